"""Kafka client security: one configuration for every client we make, Python (kafka-python) and Flink (Java).

Sources, both optional (PLAINTEXT when neither says otherwise, the behaviour before this existed):

- a Java-style client properties file (`--kafka-properties FILE` of the job and the tools, or the environment
  variable `METERSTREAM_KAFKA_PROPERTIES=FILE`), with the keys of `PROPERTY_KEYS`;
- environment variables `METERSTREAM_KAFKA_<FIELD>` (`METERSTREAM_KAFKA_SECURITY_PROTOCOL=SASL_SSL`,
  `METERSTREAM_KAFKA_SASL_PASSWORD=...`); a key in the file wins over the same one in the environment.

Validated strictly before any client starts: an unknown key (in the file or as a `METERSTREAM_KAFKA_` variable), a
protocol or mechanism that is not one of ours, a certificate file that is missing or not PEM, credentials without a
SASL protocol or a SASL protocol without them: `KafkaSecurityError`, naming the mistake (never a secret's value).

Certificates are PEM for both sides: the truststore is a PEM file of CA certificates, the keystore (mutual TLS) a PEM
file with the client's certificate chain and its PKCS#8 private key (Java clients read both with
`ssl.*store.type=PEM`; kafka-python hands them to Python's `ssl`).

The settings are process-wide (`active()`): `use_properties_file` records the file in the environment, so every
client of the process and of the processes it starts (the demo's job, chaos's attempts) use the same. Secrets are
`SecretStr`: repr and str show `**********`; `redact` blanks them in anything we print.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "METERSTREAM_KAFKA_"
PROPERTIES_ENV = "METERSTREAM_KAFKA_PROPERTIES"
# Environment variables of ours with the prefix that are not settings fields.
_NOT_FIELDS = {PROPERTIES_ENV}

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}
# Properties file key -> settings field. `sasl.username`/`sasl.password` are ours (the Java client wants a JAAS
# line; we build it), the others are the Java client's own.
PROPERTY_KEYS = {
    "security.protocol": "security_protocol",
    "sasl.mechanism": "sasl_mechanism",
    "sasl.username": "sasl_username",
    "sasl.password": "sasl_password",
    "sasl.jaas.config": "sasl_jaas_config",
    "ssl.truststore.location": "ssl_truststore_location",
    "ssl.truststore.type": "ssl_truststore_type",
    "ssl.keystore.location": "ssl_keystore_location",
    "ssl.keystore.type": "ssl_keystore_type",
    "ssl.key.password": "ssl_key_password",
    "ssl.endpoint.identification.algorithm": "ssl_endpoint_identification_algorithm",
}
# Where Flink's sql-connector-kafka jar (the one PyFlink loads) relocates the Kafka client's classes.
FLINK_KAFKA_SHADED = "org.apache.flink.kafka.shaded."
_JAAS_OPTION = re.compile(r'(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"')
_JAAS = re.compile(r'^\s*([\w.$]+)\s+required\b(.*?);?\s*$', re.DOTALL)


class KafkaSecurityError(ValueError):
    """The Kafka security settings cannot work; the message names what is wrong (never a secret's value)."""


def _jaas_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_jaas(text: str) -> tuple[str, dict[str, str]]:
    """(login module, options) of one `sasl.jaas.config` line; `KafkaSecurityError` when it is not one."""
    match = _JAAS.match(text)
    if match is None:
        raise KafkaSecurityError("sasl.jaas.config: expected `<LoginModule class> required username=\"...\" "
                                 "password=\"...\";`")
    options = {key: re.sub(r"\\(.)", r"\1", value) for key, value in _JAAS_OPTION.findall(match.group(2))}
    return match.group(1), options


class KafkaSecurity(BaseSettings):
    """How every Kafka client of meterstream authenticates and encrypts. Build it with `load` (file and environment)
    or directly (tests)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True, case_sensitive=False)

    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_jaas_config: SecretStr | None = None
    ssl_truststore_location: Path | None = None
    ssl_truststore_type: str = "PEM"
    ssl_keystore_location: Path | None = None
    ssl_keystore_type: str = "PEM"
    ssl_key_password: SecretStr | None = None
    # "https": the broker's certificate must name the host we connect to (the Java default); "": not checked.
    ssl_endpoint_identification_algorithm: str = "https"

    @field_validator("security_protocol")
    @classmethod
    def _protocol(cls, value: str) -> str:
        if value.upper() not in PROTOCOLS:
            hint = " (SASL over plain text would send the password unencrypted: use SASL_SSL)" \
                if value.upper() == "SASL_PLAINTEXT" else ""
            raise ValueError(f"security.protocol {value!r} is not one of {', '.join(PROTOCOLS)}{hint}")
        return value.upper()

    @field_validator("sasl_mechanism")
    @classmethod
    def _mechanism(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in MECHANISMS:
            raise ValueError(f"sasl.mechanism {value!r} is not one of {', '.join(MECHANISMS)}")
        return None if value is None else value.upper()

    @field_validator("ssl_truststore_type", "ssl_keystore_type")
    @classmethod
    def _pem(cls, value: str) -> str:
        if value.upper() != "PEM":
            raise ValueError(f"store type {value!r}: only PEM is supported (one format for the Java and the Python "
                             "clients; convert a JKS/PKCS12 store with keytool and openssl)")
        return "PEM"

    @field_validator("ssl_endpoint_identification_algorithm")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if value.lower() not in ("https", ""):
            raise ValueError(f"ssl.endpoint.identification.algorithm {value!r}: expected https or empty (off)")
        return value.lower()

    @field_validator("ssl_truststore_location", "ssl_keystore_location")
    @classmethod
    def _pem_file(cls, value: Path | None, info) -> Path | None:
        if value is None:
            return None
        key = next(k for k, f in PROPERTY_KEYS.items() if f == info.field_name)
        path = value.expanduser()
        if not path.is_file():
            raise ValueError(f"{key} {str(path)!r}: no such file")
        text = path.read_text(encoding="ascii", errors="replace")
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise ValueError(f"{key} {str(path)!r}: no PEM certificate in it")
        if info.field_name == "ssl_keystore_location":
            if re.search(r"-----BEGIN (RSA|EC|DSA) PRIVATE KEY-----", text):
                raise ValueError(f"{key} {str(path)!r}: the private key is not PKCS#8, which the Java client needs "
                                 "(convert it: openssl pkcs8 -topk8 ...)")
            if not re.search(r"-----BEGIN (ENCRYPTED )?PRIVATE KEY-----", text):
                raise ValueError(f"{key} {str(path)!r}: no private key in it (the keystore file holds the client's "
                                 "certificate chain and its key)")
        return path.resolve()

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecurity:
        sasl = self.security_protocol == "SASL_SSL"
        has_credentials = self.sasl_jaas_config is not None or self.sasl_username is not None \
            or self.sasl_password is not None
        if not sasl and (self.sasl_mechanism or has_credentials):
            raise ValueError(f"SASL settings given but security.protocol is {self.security_protocol}: "
                             "use SASL_SSL")
        if sasl:
            if self.sasl_mechanism is None:
                raise ValueError(f"security.protocol SASL_SSL needs sasl.mechanism ({', '.join(MECHANISMS)})")
            if self.sasl_jaas_config is not None:
                if self.sasl_username is not None or self.sasl_password is not None:
                    raise ValueError("give either sasl.jaas.config or sasl.username/sasl.password, not both")
                module, options = parse_jaas(self.sasl_jaas_config.get_secret_value())
                if module != LOGIN_MODULES[self.sasl_mechanism]:
                    raise ValueError(f"sasl.jaas.config uses {module}, sasl.mechanism {self.sasl_mechanism} needs "
                                     f"{LOGIN_MODULES[self.sasl_mechanism]}")
                if not options.get("username") or not options.get("password"):
                    raise ValueError("sasl.jaas.config needs username=\"...\" and password=\"...\"")
            elif not self.sasl_username or self.sasl_password is None:
                raise ValueError("security.protocol SASL_SSL needs sasl.username and sasl.password "
                                 "(or sasl.jaas.config)")
        if self.security_protocol == "PLAINTEXT" and (
                self.ssl_truststore_location or self.ssl_keystore_location or self.ssl_key_password):
            raise ValueError("ssl.* settings given but security.protocol is PLAINTEXT: use SSL or SASL_SSL")
        if self.ssl_key_password is not None and self.ssl_keystore_location is None:
            raise ValueError("ssl.key.password given without ssl.keystore.location")
        return self

    # --- what each side gets -----------------------------------------------------------------------------------

    def flink_properties(self) -> dict[str, str]:
        """`java_properties` for the Flink Kafka connector's shaded client (sources, sinks, the SQL connector)."""
        return self.java_properties(class_prefix=FLINK_KAFKA_SHADED)

    def credentials(self) -> tuple[str, str] | None:
        """(username, password) of SASL, from whichever form they were given in."""
        if self.security_protocol != "SASL_SSL":
            return None
        if self.sasl_jaas_config is not None:
            _, options = parse_jaas(self.sasl_jaas_config.get_secret_value())
            return options["username"], options["password"]
        return self.sasl_username or "", self.sasl_password.get_secret_value() if self.sasl_password else ""

    def kafka_python_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's clients (empty for PLAINTEXT: the clients' defaults, as before)."""
        if self.security_protocol == "PLAINTEXT":
            return {}
        kwargs: dict[str, Any] = {
            "security_protocol": self.security_protocol,
            "ssl_check_hostname": self.ssl_endpoint_identification_algorithm == "https",
        }
        if self.ssl_truststore_location:
            kwargs["ssl_cafile"] = str(self.ssl_truststore_location)
        if self.ssl_keystore_location:
            # One PEM file with the chain and the key: Python's ssl reads the key from the certificate file.
            kwargs["ssl_certfile"] = str(self.ssl_keystore_location)
            kwargs["ssl_keyfile"] = str(self.ssl_keystore_location)
            if self.ssl_key_password is not None:
                kwargs["ssl_password"] = self.ssl_key_password.get_secret_value()
        if self.security_protocol == "SASL_SSL":
            username, password = self.credentials()
            kwargs.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=username,
                          sasl_plain_password=password)
        return kwargs

    def java_properties(self, *, class_prefix: str = "") -> dict[str, str]:
        """Java Kafka client properties (the Flink KafkaSource/KafkaSink builders' `set_property`, the SQL
        connector's `properties.*`); empty for PLAINTEXT. `class_prefix`: the package the client's classes are
        relocated under (Flink's sql-connector jar shades the Kafka client: its JAAS login module is
        `org.apache.flink.kafka.shaded.org.apache.kafka...`, and an unshaded name is "No LoginModule found")."""
        if self.security_protocol == "PLAINTEXT":
            return {}
        props = {"security.protocol": self.security_protocol,
                 "ssl.endpoint.identification.algorithm": self.ssl_endpoint_identification_algorithm}
        if self.ssl_truststore_location:
            props.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": str(self.ssl_truststore_location)})
        if self.ssl_keystore_location:
            props.update({"ssl.keystore.type": "PEM", "ssl.keystore.location": str(self.ssl_keystore_location)})
            if self.ssl_key_password is not None:
                props["ssl.key.password"] = self.ssl_key_password.get_secret_value()
        if self.security_protocol == "SASL_SSL":
            props["sasl.mechanism"] = self.sasl_mechanism
            if self.sasl_jaas_config is not None:
                jaas = self.sasl_jaas_config.get_secret_value().strip()
                if class_prefix and jaas.startswith("org.apache.kafka."):
                    jaas = class_prefix + jaas
                props["sasl.jaas.config"] = jaas
            else:
                username, password = self.credentials()
                props["sasl.jaas.config"] = (f"{class_prefix}{LOGIN_MODULES[self.sasl_mechanism]} required "
                                             f"username={_jaas_quote(username)} password={_jaas_quote(password)};")
        return props

    def secrets(self) -> list[str]:
        """Every secret value these settings hold (for `redact`), longest first."""
        values = [s.get_secret_value() for s in (self.sasl_password, self.sasl_jaas_config, self.ssl_key_password)
                  if s is not None]
        credentials = self.credentials()
        if credentials:
            values.append(credentials[1])
        values += [props["sasl.jaas.config"] for props in (self.java_properties(),
                                                           self.java_properties(class_prefix=FLINK_KAFKA_SHADED))
                   if "sasl.jaas.config" in props]
        return sorted({v for v in values if v}, key=len, reverse=True)

    def describe(self) -> str:
        """One line for logs: protocol, mechanism, user and files; no secret."""
        if self.security_protocol == "PLAINTEXT":
            return "PLAINTEXT"
        parts = [self.security_protocol]
        if self.security_protocol == "SASL_SSL":
            parts.append(f"{self.sasl_mechanism} as {self.credentials()[0]!r}")
        if self.ssl_keystore_location:
            parts.append("mutual TLS")
        return ", ".join(parts)


def read_properties(path: str | os.PathLike) -> dict[str, str]:
    """A Java-style properties file (`key=value` or `key: value` lines, `#`/`!` comments, a trailing `\\` continues
    a line) as field values; unknown keys raise `KafkaSecurityError` naming them and the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KafkaSecurityError(f"Kafka properties file {str(path)!r}: {exc.strerror or exc}") from None
    values: dict[str, str] = {}
    unknown: list[str] = []
    logical = ""
    for raw in text.splitlines():
        line = (logical + raw.lstrip()) if logical else raw.strip()
        if line.endswith("\\") and not line.endswith("\\\\"):
            logical = line[:-1]
            continue
        logical = ""
        if not line or line[0] in "#!":
            continue
        match = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)$", line)
        key, value = (match.group(1), match.group(2).strip()) if match else (line, "")
        if key not in PROPERTY_KEYS:
            unknown.append(key)
            continue
        values[PROPERTY_KEYS[key]] = value
    if unknown:
        raise KafkaSecurityError(f"Kafka properties file {str(path)!r}: unknown key(s) {', '.join(unknown)}; "
                                 f"known: {', '.join(PROPERTY_KEYS)}")
    return values


def _unknown_environment(environ: Mapping[str, str]) -> list[str]:
    fields = {f"{ENV_PREFIX}{name}".upper() for name in KafkaSecurity.model_fields}
    return sorted(name for name in environ
                  if name.upper().startswith(ENV_PREFIX) and name.upper() not in fields | _NOT_FIELDS)


def _message(exc: ValidationError, source: str) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        text = error["msg"].removeprefix("Value error, ")
        key = next((k for k, f in PROPERTY_KEYS.items() if f == where), where)
        problems.append(text if not where or text.startswith(key) or key in text else f"{key}: {text}")
    return f"Kafka security settings ({source}): " + "; ".join(problems)


def load(properties_file: str | os.PathLike | None = None, *,
         environ: Mapping[str, str] | None = None) -> KafkaSecurity:
    """The settings from `properties_file` (else the file named by `METERSTREAM_KAFKA_PROPERTIES`, if any) and the
    `METERSTREAM_KAFKA_*` environment; `KafkaSecurityError` names every mistake."""
    environ = os.environ if environ is None else environ
    unknown = _unknown_environment(environ)
    if unknown:
        raise KafkaSecurityError(f"unknown environment variable(s) {', '.join(unknown)}; known: "
                                 + ", ".join(sorted(f"{ENV_PREFIX}{n.upper()}" for n in KafkaSecurity.model_fields)
                                             + [PROPERTIES_ENV]))
    properties_file = properties_file or environ.get(PROPERTIES_ENV) or None
    values = read_properties(properties_file) if properties_file else {}
    source = f"file {str(properties_file)!r} and environment" if properties_file else "environment"
    try:
        if environ is os.environ:
            return KafkaSecurity(**values)
        # A given mapping (tests): only it, not the process environment.
        from_env = {name.upper().removeprefix(ENV_PREFIX).lower(): value for name, value in environ.items()
                    if name.upper().startswith(ENV_PREFIX) and name.upper() not in _NOT_FIELDS}
        return KafkaSecurity.model_validate({**from_env, **values})
    except ValidationError as exc:
        raise KafkaSecurityError(_message(exc, source)) from None


_active: tuple[tuple, KafkaSecurity] | None = None


def active() -> KafkaSecurity:
    """The process's settings (`load()` of the environment), read again when the environment changed."""
    global _active
    key = tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX)))
    if _active is None or _active[0] != key:
        _active = (key, load())
    return _active[1]


def use_properties_file(path: str | os.PathLike | None) -> KafkaSecurity:
    """Validate `path` (with the environment) and make it this process's settings and those of the processes it
    starts (`METERSTREAM_KAFKA_PROPERTIES`, an absolute path); None: the environment as it is."""
    if path is not None:
        absolute = str(Path(path).expanduser().resolve())
        load(absolute)  # fails before anything changes
        os.environ[PROPERTIES_ENV] = absolute
    return active()


def client_kwargs() -> dict[str, Any]:
    """`active().kafka_python_kwargs()`: what every kafka-python client of ours is built with."""
    return active().kafka_python_kwargs()


# --- redaction -----------------------------------------------------------------------------------------------------

REDACTED = "<redacted>"
# Option names whose values are credentials: Flink's own sensitive words (`GlobalConfiguration.isSensitive`:
# password, secret, fs.azure.account.key, apikey, api-key, auth-params, service-key, token, basic-auth, jaas.config,
# http-headers) and more. `key` alone would also hit harmless options (`key-by`, a `*.keyed.*` switch,
# `ssl.keystore.type`): credential keys are named `...secret-key`, `...access-key`, `...key.password`,
# `...private-key`, `...api-key`, `...account.key`, which the parts below match; a bare `key` never is one.
_SECRET_NAME = re.compile(
    r"(secret|password|passwd|token|credential|jaas|auth[-_.]?params|basic[-_.]?auth|http[-_.]?headers"
    r"|(private|access|api|secret|session|auth|service|account)[-_.]?key)", re.IGNORECASE)


def is_secret_option(name: str) -> bool:
    """Whether a configuration option's value is a credential (see `_SECRET_NAME` for which names are)."""
    return bool(_SECRET_NAME.search(name))


def redact_option(text: str) -> str:
    """`KEY=VALUE` with VALUE replaced when KEY names a credential."""
    key, sep, value = text.partition("=")
    return f"{key}{sep}{REDACTED}" if sep and is_secret_option(key) and value else text


def redact_args(args: list[str]) -> list[str]:
    """A command line with credential values replaced: `KEY=VALUE` words (`--flink-conf s3.secret-key=X`,
    `-Ds3.secret-key=X`, `--flink-conf=s3.secret-key=X`) and the word after a flag naming one (`--password X`)."""
    out: list[str] = []
    hide_next = False
    for word in args:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        if word.startswith("-") and "=" not in word and is_secret_option(word):
            hide_next = True
            out.append(word)
            continue
        flag, sep, rest = word.partition("=")
        if word.startswith("--") and sep and "=" in rest:  # --flink-conf=KEY=VALUE
            out.append(f"{flag}={redact_option(rest)}")
        elif word.startswith("-D"):
            out.append("-D" + redact_option(word[2:]))
        else:
            out.append(redact_option(word))
    return out


def redact(text: str, *, args: list[str] | None = None, security: KafkaSecurity | None = None) -> str:
    """`text` with every secret we know of replaced: the values of credential options among `args`, those of the
    security settings (`security`, else the active ones), and `password="..."` in JAAS lines."""
    secrets: list[str] = []
    for word in args or []:
        for candidate in (word, word.partition("=")[2]):
            if candidate.startswith("-D"):
                candidate = candidate[2:]
            key, sep, value = candidate.partition("=")
            if sep and value and is_secret_option(key):
                secrets.append(value)
    for a, b in zip(args or [], (args or [])[1:], strict=False):
        if a.startswith("-") and "=" not in a and is_secret_option(a):
            secrets.append(b)
    # Settings that do not load hold no secret we could know.
    with contextlib.suppress(KafkaSecurityError):
        secrets += (security or active()).secrets()
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return re.sub(r'((?:password|secret|token)\s*=\s*)"(?:[^"\\]|\\.)*"', rf'\1"{REDACTED}"', text,
                  flags=re.IGNORECASE)


# --- command lines -------------------------------------------------------------------------------------------------

def add_properties_argument(parser) -> None:
    """`--kafka-properties FILE` on an argparse parser (the job, the passthrough job, the tools)."""
    parser.add_argument("--kafka-properties", metavar="FILE",
                        help="Kafka client security properties (security.protocol, sasl.*, ssl.*; PEM files): the "
                             f"file is read by the process itself, so no secret is on a command line; default: "
                             f"${PROPERTIES_ENV} and ${ENV_PREFIX}* variables, else PLAINTEXT")


def use_or_exit(path: str | os.PathLike | None, *, what: str) -> KafkaSecurity:
    """`use_properties_file`, a mistake ending the run (SystemExit) with `what` and the message."""
    try:
        return use_properties_file(path)
    except KafkaSecurityError as exc:
        raise SystemExit(f"{what}: {exc}") from None


def use_plaintext() -> list[str]:
    """Drop the Kafka security settings from this process's environment (and its children's): for tools that start
    their own PLAINTEXT broker (the demo, chaos without --bootstrap). Returns the variables dropped (names only)."""
    dropped = sorted(name for name in os.environ if name.upper().startswith(ENV_PREFIX))
    for name in dropped:
        del os.environ[name]
    return dropped


# Settings fields that hold a secret: given as environment variables, they would be in every environment dump.
SECRET_FIELDS = ("sasl_password", "sasl_jaas_config", "ssl_key_password")


def secrets_in_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """The `METERSTREAM_KAFKA_*` variables set in `environ` (default: this process's) that hold a secret."""
    environ = os.environ if environ is None else environ
    names = {f"{ENV_PREFIX}{name}".upper() for name in SECRET_FIELDS}
    return sorted(name for name in environ if name.upper() in names)
