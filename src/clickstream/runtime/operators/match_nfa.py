"""The automaton behind MATCH_RECOGNIZE, as Flink's CEP library builds and runs it.

Compilation follows Flink's NFACompiler for the patterns SQL produces (every variable strictly
after the previous one, quantifiers `consecutive()`): states are built from the end of the pattern
backwards; a loop has a TAKE edge to itself and a PROCEED (epsilon) edge to what follows; `{n,m}`
is n mandatory states then m - n optional ones that may PROCEED past the rest. A greedy quantifier
(the default in SQL) does not build a longest-match search: it adds "and not <the loop's
condition>" to the edges of the state after it, so a row the loop can take is never taken by the
next variable (`A B+ C` with C's rows also meeting B's condition never matches).

Running follows Flink's NFA: each row is offered to every partial match (and to the start state,
which stays, so a match may start at any row); a partial match that no edge accepts dies (strict
contiguity). A partial match that reaches the final state is a completed match, emitted once no
partial match that started earlier is still running; then the AFTER MATCH SKIP strategy prunes the
partial and completed matches that started too early. With WITHIN, a partial match whose first
row is that long before the current time is dropped.

Conditions are asked for in batches: `wanted` lists the (partial match, variable) pairs whose
DEFINE a row may need, the caller evaluates them all at once (DuckDB, over every partition), and
`offer` moves the partial matches with the answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clickstream.errors import ExecutionError
from clickstream.sql.plan import PatternElement


@dataclass(eq=False)
class NfaState:
    variable: str | None  # None: the final state
    transitions: list[Transition] = field(default_factory=list)

    @property
    def final(self) -> bool:
        return self.variable is None


@dataclass(eq=False)
class Transition:
    take: bool  # TAKE consumes the row; PROCEED is an epsilon edge
    source: NfaState
    target: NfaState
    condition: str | None  # the variable whose DEFINE must hold; None: always
    unless: list[str] = field(default_factory=list)  # variables whose DEFINE must not hold


@dataclass(frozen=True)
class Row:
    number: int  # order of processing (Flink's EventId)
    time_ms: int
    values: dict[str, Any]


@dataclass(eq=False)
class Partial:
    """A computation state: where a partial match is and the rows it has taken, with variables."""

    state: NfaState
    rows: tuple[tuple[Row, str], ...] = ()

    @property
    def start(self) -> int | None:
        return self.rows[0][0].number if self.rows else None

    @property
    def start_ms(self) -> int:
        return self.rows[0][0].time_ms

    @property
    def sort_key(self) -> float:
        # Flink's COMPUTATION_STATE_COMPARATOR: by first row; the start state last
        return self.rows[0][0].number if self.rows else float("inf")


Condition = tuple[int, str]  # (id of a Partial, variable)


def compile_pattern(elements: list[PatternElement]) -> NfaState:
    """The start state of the automaton for `elements` (NFACompiler, strict contiguity)."""
    sink = NfaState(None)
    for element in reversed(elements):
        sink = _convert(element, sink)
    return sink


def _convert(element: PatternElement, sink: NfaState) -> NfaState:
    low, high, variable = element.min, element.max, element.variable
    if high == -1:  # `*`, `+`, `{n,}`: a looping state after the mandatory ones
        looping = NfaState(variable)
        looping.transitions.append(Transition(False, looping, sink, None))
        if element.greedy:
            _not_after(sink, variable)
        looping.transitions.append(Transition(True, looping, looping, variable))
        times = max(low, 1)
        return _times(variable, looping, sink, times, times, optional=low == 0)
    if (low, high) == (0, 1):
        return _singleton(variable, sink, sink, optional=True)
    if element.greedy and low != high:
        _not_after(sink, variable)
    return _times(variable, sink, sink, low, high, optional=low == 0)


def _times(variable: str, sink: NfaState, proceed: NfaState, low: int, high: int, optional: bool) -> NfaState:
    """NFACompiler.createTimesState: m - n optional states, n - 1 mandatory ones, the first."""
    last = sink
    for _ in range(max(low, 1), high):
        last = _singleton(variable, last, proceed, optional=True)
    for _ in range(max(low, 1) - 1):
        last = _singleton(variable, last, proceed, optional=False)
    return _singleton(variable, last, proceed, optional=optional)


def _singleton(variable: str, sink: NfaState, proceed: NfaState, optional: bool) -> NfaState:
    state = NfaState(variable)
    state.transitions.append(Transition(True, state, sink, variable))
    if optional:
        state.transitions.append(Transition(False, state, proceed, None))
    return state


def _not_after(state: NfaState, variable: str) -> None:
    """NFACompiler.updateWithGreedyCondition: the edges after a greedy loop need `not variable`."""
    for transition in state.transitions:
        transition.unless.append(variable)


@dataclass(eq=False)
class PartitionRun:
    """The NFA state of one partition: partial matches (the start state among them) and completed
    matches waiting for earlier partial matches to finish."""

    partials: list[Partial]
    completed: list[Partial] = field(default_factory=list)

    @property
    def idle(self) -> bool:
        return not self.completed and all(p.start is None for p in self.partials)


class Matcher:
    """Runs the automaton of one pattern over the partitions' rows."""

    def __init__(self, start: NfaState, skip: str, skip_target: str | None, within_ms: int | None) -> None:
        self.start, self.skip, self.skip_target, self.within_ms = start, skip, skip_target, within_ms
        self._wanted: dict[int, list[str]] = {}  # per state (the graph never changes)

    def __getstate__(self) -> dict:
        # the cache is keyed by id(): ids differ once a checkpoint is restored
        return {**vars(self), "_wanted": {}}

    def new_run(self) -> PartitionRun:
        return PartitionRun([Partial(self.start)])

    def wanted(self, run: PartitionRun) -> list[tuple[Partial, str]]:
        """The (partial match, variable) conditions the next row may need, for every partial match."""
        return [(p, v) for p in run.partials for v in self._variables(p.state)]

    def _variables(self, state: NfaState) -> list[str]:
        if id(state) not in self._wanted:
            self._wanted[id(state)] = _variables(state)
        return self._wanted[id(state)]

    def advance_time(self, run: PartitionRun, time_ms: int) -> list[Partial]:
        """Drop the partial matches WITHIN rules out at `time_ms`; emit what that frees."""
        if self.within_ms is not None:
            run.partials = [
                p for p in run.partials if p.start is None or time_ms - p.start_ms < self.within_ms
            ]
        return self._emit(run, [])

    def offer(self, run: PartitionRun, row: Row, holds: dict[Condition, bool]) -> list[Partial]:
        """Offer `row` to every partial match; the completed matches it lets out, in order."""
        partials: list[Partial] = []
        potential: list[Partial] = []
        for partial in run.partials:
            for successor in self._next(partial, row, holds):
                (potential if successor.state.final else partials).append(successor)
        run.partials = sorted(partials, key=lambda p: p.sort_key)
        return self._emit(run, potential)

    def _next(self, partial: Partial, row: Row, holds: dict[Condition, bool]) -> list[Partial]:
        """NFA.computeNextStates: follow PROCEED edges whose conditions hold, take on TAKE edges;
        a taken row that can PROCEED on to the final state also completes a match."""

        def allowed(transition: Transition) -> bool:
            if transition.condition is not None and not holds[(id(partial), transition.condition)]:
                return False
            return not any(holds[(id(partial), v)] for v in transition.unless)

        result = []
        for transition in _edges(partial.state, allowed):
            taken = partial.rows + ((row, transition.source.variable),)
            result.append(Partial(transition.target, taken))  # type: ignore[arg-type]
            if _proceeds_to_final(transition.target, allowed):
                result.append(Partial(NfaState(None), taken))  # type: ignore[arg-type]
        if partial.start is None:
            result.append(Partial(self.start))
        return result

    def _emit(self, run: PartitionRun, potential: list[Partial]) -> list[Partial]:
        """NFA.processMatchesAccordingToSkipStrategy: completed matches leave in order of their
        first row once no running partial match started strictly before them; each prunes by the
        skip strategy."""
        run.completed = sorted(run.completed + potential, key=lambda p: p.sort_key)
        out = []
        while run.completed:
            earliest = min((p.sort_key for p in run.partials), default=float("inf"))
            match = run.completed[0]
            if match.sort_key > earliest:  # NFA.isEarlier: compare(match, partial) <= 0
                break
            run.completed.pop(0)
            prune = self._pruning(match)
            run.partials = [p for p in run.partials if not prune(p)]
            run.completed = [p for p in run.completed if not prune(p)]
            out.append(match)
        return out

    def _pruning(self, match: Partial):
        """Which matches the AFTER MATCH SKIP strategy discards after `match`."""
        numbers = [r.number for r, _ in match.rows]
        if self.skip == "PAST LAST ROW":
            last = max(numbers)
            return lambda p: p.start is not None and p.start <= last
        if self.skip == "TO NEXT ROW":
            first = min(numbers)
            return lambda p: p.start is not None and p.start <= first
        mapped = [r.number for r, v in match.rows if v == self.skip_target]
        target = (min(mapped) if self.skip == "TO FIRST" else max(mapped)) if mapped else None
        if target is None or target == min(numbers):
            # Flink (SkipToElementStrategy.throwExceptionOnMiss) fails the job rather than
            # skip to no row or to the match's own first row, which would loop forever
            raise ExecutionError("Could not skip to first element of a match.")
        return lambda p: p.start is not None and p.start < target


def _edges(state: NfaState, allowed) -> list[Transition]:
    """NFA.createDecisionGraph: the TAKE edges reachable through PROCEED edges that hold."""
    edges, stack = [], [state]
    while stack:
        current = stack.pop()
        for transition in current.transitions:
            if allowed(transition):
                if transition.take:
                    edges.append(transition)
                else:
                    stack.append(transition.target)
    return edges


def _proceeds_to_final(state: NfaState, allowed) -> bool:
    """NFA.findFinalStateAfterProceed."""
    stack = [state]
    while stack:
        current = stack.pop()
        for transition in current.transitions:
            if not transition.take and allowed(transition):
                if transition.target.final:
                    return True
                stack.append(transition.target)
    return False


def _variables(state: NfaState) -> list[str]:
    """Every variable whose condition a row offered at `state` may need: on the edges reachable
    through PROCEED edges, and on the PROCEED edges after each TAKE (a completed match)."""
    found: list[str] = []

    def add(transition: Transition) -> None:
        for variable in [transition.condition, *transition.unless]:
            if variable is not None and variable not in found:
                found.append(variable)

    for current in _proceed_closure(state):
        for transition in current.transitions:
            add(transition)
            if transition.take:
                for after in _proceed_closure(transition.target):
                    for edge in after.transitions:
                        if not edge.take:
                            add(edge)
    return found


def _proceed_closure(state: NfaState) -> list[NfaState]:
    """`state` and the states its PROCEED edges reach, whatever their conditions."""
    closure: list[NfaState] = []
    stack = [state]
    while stack:
        current = stack.pop()
        if any(current is c for c in closure):
            continue
        closure.append(current)
        stack.extend(t.target for t in current.transitions if not t.take)
    return closure
