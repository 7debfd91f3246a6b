"""Connector options are declared once per connector (`OPTIONS`) and checked at CREATE TABLE, as
Flink's FactoryUtil does: an unknown key, a bad value or a missing required option is refused with
Flink's message and the position of the option; what works today keeps working."""

from __future__ import annotations

import importlib
import io
import re
from pathlib import Path

import pytest

from clickstream import pipelines
from clickstream.config import Settings
from clickstream.connectors import registry
from clickstream.connectors.formats import FORMATS
from clickstream.connectors.jdbc import _lookup_cache
from clickstream.engine import Engine
from clickstream.errors import ClickstreamError, ConnectorError, ConnectorOptionError, SqlValidationError

ROOT = Path(__file__).resolve().parents[2]


def create(ddl: str) -> Engine:
    engine = Engine(Settings(), out=io.StringIO())
    engine.execute_script(ddl, "job.sql")
    return engine


def refused(ddl: str) -> ConnectorOptionError:
    with pytest.raises(ConnectorOptionError) as info:
        create(ddl)
    return info.value


LOG_TYPO = """CREATE TABLE events (a BIGINT)
WITH (
  'connector' = 'log',
  'topic' = 'events',
  'scan.bounded.mod' = 'latest-offset'
);"""


def test_misspelled_key_is_refused_with_flinks_message_and_a_hint(tmp_path):
    error = refused(LOG_TYPO.replace("'events',", f"'events', 'path' = '{tmp_path}',"))
    supported = [k for k in error.message.split("Supported options:\n\n")[1].split("\n")]
    assert error.message.startswith(
        "Unsupported options found for 'log'.\n\nUnsupported options:\n\nscan.bounded.mod\n\n"
        "Supported options:\n\nconnector\n"
    )
    assert supported == sorted(supported)
    assert {"scan.bounded.mode", "topic", "format", "json.ignore-parse-errors", "properties.*"} <= set(
        supported
    )
    assert error.hint == "Did you mean 'scan.bounded.mode'?"
    assert (error.line, error.col) == (5, 3)  # at the key
    text = str(error)
    assert "LINE 5:   'scan.bounded.mod' = 'latest-offset'" in text
    assert "(job.sql, line 5, column 3)" in text.splitlines()[0]
    # Flink's block stays whole below the first line
    assert "Unsupported options found for 'log'." in text.splitlines()[0]
    assert "\n\nUnsupported options:\n\nscan.bounded.mod\n\nSupported options:\n\nconnector\n" in text


def test_the_error_is_a_validation_and_a_connector_error():
    error = refused(LOG_TYPO)
    assert isinstance(error, SqlValidationError) and isinstance(error, ConnectorError)
    assert error.key == "scan.bounded.mod" and error.table == "events"


def test_several_unknown_keys_are_listed_sorted():
    error = refused(
        "CREATE TABLE p (a INT) WITH ('connector' = 'print', 'zzz' = '1', 'print-identifer' = 'x');"
    )
    assert "Unsupported options:\n\nprint-identifer\nzzz\n\n" in error.message
    assert error.hint == "Did you mean 'print-identifier'?"


def test_missing_required_option_is_named():
    error = refused("CREATE TABLE f (a INT) WITH ('connector' = 'filesystem', 'format' = 'json');")
    assert "One or more required options are missing.\n\nMissing required options are:\n\npath" in (
        error.message
    )
    assert error.line == 1 and "'path'" in error.hint
    error = refused("CREATE TABLE d (a INT) WITH ('connector' = 'jdbc');")
    assert error.message.endswith("Missing required options are:\n\ntable-name\nurl")


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        (
            "scan.bounded.mode",
            "latest",
            "is not supported; use one of unbounded, latest-offset, group-offsets, specific-offsets",
        ),
        ("scan.startup.mode", "timestamp", "is not supported; use one of earliest-offset"),
        ("log.partitions", "four", "is not an integer"),
        ("log.partitions", "0", "is not supported; use an integer >= 1"),
        ("log.retention.ms", "a week", "is not a duration"),
        (
            "format",
            "avro",
            "is not supported; use one of json, csv, raw, debezium-json, canal-json, maxwell-json",
        ),
    ],
)
def test_bad_values_name_the_option_the_value_and_what_is_allowed(option, value, says):
    error = refused(
        f"CREATE TABLE events (a BIGINT) WITH ('connector' = 'log', 'topic' = 't',\n"
        f"  '{option}' = '{value}');"
    )
    assert f"Table 'events': '{option}' = '{value}' {says}" in error.message
    assert (error.line, error.col) == (2, 3)


def test_bool_and_number_values_are_checked():
    error = refused("CREATE TABLE p (a INT) WITH ('connector' = 'print', 'standard-error' = 'yes');")
    assert "'standard-error' = 'yes' is not a boolean ('true' or 'false')" in error.message
    error = refused("CREATE TABLE g (a INT) WITH ('connector' = 'datagen', 'rows-per-second' = 'fast');")
    assert "is not a number" in error.message


def test_enum_values_are_case_insensitive_as_in_flink():
    create(
        "CREATE TABLE d (k BIGINT) WITH ('connector' = 'jdbc', 'url' = 'jdbc:sqlite::memory:', "
        "'table-name' = 'd', 'lookup.cache' = 'partial', 'lookup.partial-cache.max-rows' = '10', "
        "'lookup.partial-cache.expire-after-write' = '1 min');"
    )


def test_format_options_come_with_the_chosen_format(tmp_path):
    path = tmp_path / "x.csv"
    create(
        f"CREATE TABLE f (a INT) WITH ('connector' = 'filesystem', 'path' = '{path}', "
        "'format' = 'csv', 'csv.field-delimiter' = ';', 'csv.ignore-parse-errors' = 'true');"
    )
    create(
        f"CREATE TABLE f (a INT) WITH ('connector' = 'filesystem', 'path' = '{path}', "
        "'json.fail-on-missing-field' = 'false', 'json.ignore-parse-errors' = 'true');"  # json: default
    )
    error = refused(
        f"CREATE TABLE f (a INT) WITH ('connector' = 'filesystem', 'path' = '{path}', "
        "'format' = 'json', 'csv.field-delimiter' = ';');"
    )
    assert "Unsupported options:\n\ncsv.field-delimiter\n" in error.message
    # value.format brings in value.<format>.*, as in Flink
    create(
        "CREATE TABLE l (a INT) WITH ('connector' = 'log', 'topic' = 't', 'value.format' = 'json', "
        "'value.json.ignore-parse-errors' = 'true');"
    )
    error = refused(
        "CREATE TABLE f (a INT) WITH ('connector' = 'log', 'topic' = 't', "
        "'json.timestamp-format.standard' = 'RFC-3339');"
    )
    assert "use one of SQL, ISO-8601" in error.message


def test_options_flink_accepts_and_we_ignore_are_accepted(tmp_path):
    create(
        "CREATE TABLE p (a INT) WITH ('connector' = 'print', 'sink.parallelism' = '2');\n"
        "CREATE TABLE d (k BIGINT) WITH ('connector' = 'jdbc', 'url' = 'jdbc:sqlite::memory:', "
        "'table-name' = 'd', 'driver' = 'org.sqlite.JDBC', 'sink.buffer-flush.max-rows' = '500', "
        "'sink.buffer-flush.interval' = '2s', 'sink.max-retries' = '5', 'sink.parallelism' = '1', "
        "'lookup.partial-cache.expire-after-access' = '1 min', 'scan.fetch-size' = '100');\n"
        "CREATE TABLE l (a INT) WITH ('connector' = 'log', 'topic' = 't', "
        "'properties.bootstrap.servers' = 'localhost:9092', 'properties.group.id' = 'g', "
        "'sink.delivery-guarantee' = 'at-least-once', 'scan.topic-partition-discovery.interval' = '1 min');\n"
        f"CREATE TABLE f (a INT) WITH ('connector' = 'filesystem', 'path' = '{tmp_path}', "
        "'sink.rolling-policy.file-size' = '128MB', 'sink.rolling-policy.rollover-interval' = '30 min', "
        "'auto-compaction' = 'true');\n"
    )


def test_datagen_field_options_name_a_column():
    create(
        "CREATE TABLE g (id BIGINT, name STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '5', "
        "'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '5', "
        "'fields.name.length' = '4', 'fields.name.null-rate' = '0.5');"
    )
    error = refused(
        "CREATE TABLE g (id BIGINT) WITH ('connector' = 'datagen', 'fields.idd.kind' = 'sequence');"
    )
    assert error.hint == "Did you mean 'fields.id.kind'?"
    assert "fields.id.kind\n" in error.message


def test_unknown_connector_is_left_to_the_first_use():
    engine = create("CREATE TABLE k (a INT) WITH ('connector' = 'pulsar', 'topic' = 't', 'whatever' = 'x');")
    with pytest.raises(ClickstreamError, match="connector 'pulsar'"):
        engine.execute_script(
            "CREATE TABLE s (a INT) WITH ('connector' = 'print'); INSERT INTO s SELECT a FROM k;"
        )


def test_secret_value_is_not_shown_in_a_value_error():
    # no secret option has a type today; a typed one must still never show its value
    from clickstream.connectors.options import Option, check

    with pytest.raises(ConnectorOptionError) as info:
        check("x", "t", [Option("password", "int")], FORMATS, {"connector": "x", "password": "hunter22"})
    assert "hunter22" not in str(info.value) and "'password' = '******'" in info.value.message


def test_flinks_partial_cache_missing_key_option_is_read():
    from clickstream.schema import TableDef

    def cache_missing(**options: str) -> bool:
        table = TableDef(
            "d",
            [],
            options={
                "connector": "jdbc",
                "lookup.cache": "PARTIAL",
                "lookup.partial-cache.max-rows": "10",
                "lookup.partial-cache.expire-after-write": "1 min",
                **options,
            },
        )
        return _lookup_cache(table, None)[1]

    assert cache_missing() is True
    assert cache_missing(**{"lookup.partial-cache.cache-missing-key": "false"}) is False
    assert cache_missing(**{"lookup.partial-cache.caching-missing-key": "false"}) is False  # older key


# --- nothing a connector reads is left undeclared ------------------------------------------------

# The ways connector code reads an option: options.get("k"), options["k"], "k" in options, and the
# helpers that take the key as their second argument.
_READS = re.compile(
    r"""(?:options\.get\(|options\[|_int\(\w+, |_duration\(\w+, |_choice\([\w.]+, |_option_int\(\w+, |"""
    r"""_option_bool\(\w+, |parse_specific_offsets\([\w.]+, )"([a-z][\w.-]*)"|"([a-z][\w.-]*)" in options"""
)
_FIELD_READS = re.compile(r"""_opt\([\w.]+, "([a-z][\w-]*)\"""")


def _keys_read(module_name: str) -> set[str]:
    source = Path(importlib.import_module(module_name).__file__).read_text()
    keys = {a or b for a, b in _READS.findall(source)}
    keys |= {f"fields.#.{k}" for k in _FIELD_READS.findall(source)}
    keys.discard("connector")
    return keys


@pytest.mark.parametrize("connector", registry.connector_names())
def test_every_option_the_code_reads_is_declared(connector):
    module = registry._CONNECTORS[connector][0]
    declared = {o.key for o in registry.declared_options(connector)}
    read = _keys_read(module)
    if connector in ("filesystem", "log"):  # they decode with formats.Decoder
        read |= _keys_read("clickstream.connectors.formats") - {"csv.field-delimiter"}
    if connector == "filesystem":
        # The Decoder falls back to 'value.format' for the log; Flink's filesystem has no such key.
        read.discard("value.format")
    if connector == "log":
        read.add("dead-letter.path")  # read by filesystem.DeadLetters
    assert read - declared == set()


def test_format_options_the_decoder_reads_are_declared():
    assert "field-delimiter" in {o.key for o in FORMATS["csv"]}


def test_every_option_has_a_sentence_and_sound_defaults():
    for connector in registry.connector_names():
        for option in registry.declared_options(connector):
            assert option.description.endswith("."), (connector, option.key)
            if option.default is not None:
                assert option.problem(option.default) is None, (connector, option.key)
            assert not (option.required and option.default is not None), (connector, option.key)


def test_readme_connectors_section_names_declared_options_only():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Connectors", 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([a-z-]+)` \|[^|]*\|(.*)\|$", section, re.M)}
    assert set(rows) == set(registry.connector_names())
    format_keys = {f"{name}.{o.key}" for name, options in FORMATS.items() for o in options}
    for connector, cell in rows.items():
        options = registry.declared_options(connector)
        known = {o.key.replace("#", "<f>") for o in options} | format_keys
        known |= {v for o in options for v in o.values} | set(FORMATS)
        named = set(re.findall(r"`([a-z][a-z0-9<>.-]*)`", cell)) - {"jdbc", "json"}
        assert named - known == set(), connector


def test_examples_and_pipelines_are_accepted(tmp_path):
    scripts = [path.read_text() for path in ROOT.glob("examples/*.sql")]
    results = pipelines.jdbc_tables(f"jdbc:sqlite:{tmp_path / 'results.db'}")
    for name in pipelines.names():  # on the log and on Kafka (no broker needed to plan)
        for topics in (pipelines.log_topics(str(tmp_path / "log")), pipelines.kafka_topics("127.0.0.1:9")):
            scripts.append(pipelines.load(name, topics=topics, results=results))
    for script in scripts:
        # EXPLAIN runs every CREATE TABLE (so every option check) without reading data
        Engine(Settings(), out=io.StringIO()).explain(script)
