# A PyFlink-capable Flink image with meterstream installed: the JobManager, TaskManager, job submitter and load
# generator of docker-compose.yml all run it. Build from the repository root: `docker compose build`.
#
# Versions agree with the rest of the repository (tests/unit/test_docker_compose.py checks it): Flink 2.2.1 (the
# base image and the apache-flink wheel), the Kafka connector 5.0.0-2.2 (flink-conf/pom.xml), Python packages
# pinned in docker/requirements.txt.

# ---- stage 1: the Java jars, resolved and built with Maven (the same commands as meterstream/jars.py) ----------
FROM maven:3.9-eclipse-temurin-17 AS jars
WORKDIR /build

# The shaded Flink Kafka SQL connector (profile `connector`). Its own layer: it changes only with the pom.
COPY flink-conf/pom.xml flink-conf/pom.xml
RUN mvn -B -q -f flink-conf/pom.xml -P connector dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory=/jars/connector \
    && test -f /jars/connector/flink-sql-connector-kafka-5.0.0-2.2.jar

# Our jar, the JVM side of the billing core (engine/): every dependency is `provided` by flink-dist.
COPY engine/pom.xml engine/pom.xml
COPY engine/src engine/src
RUN mvn -B -q -f engine/pom.xml clean package \
    && mkdir -p /jars/engine && cp engine/target/meterstream-engine.jar /jars/engine/meterstream-engine.jar

# ---- stage 2: Flink + Python + meterstream ---------------------------------------------------------------------
FROM flink:2.2.1-scala_2.12-java17

# The base image is eclipse-temurin 17 on Ubuntu 24.04 (noble): its python3 is 3.12, for which apache-flink
# 2.2.1 publishes x86_64 Linux wheels only (docker-compose.yml pins linux/amd64). The build stops if the distro's
# Python is another version: the site-packages path below and the pinned wheels depend on it.
ARG PYTHON_VERSION=3.12
ARG FLINK_VERSION=2.2.1

ENV VENV=/opt/venv \
    METERSTREAM_HOME=/opt/meterstream \
    METERSTREAM_CACHE=/var/lib/meterstream
ENV PATH=${VENV}/bin:${PATH}

# The base image runs as `flink`; packages and files go in as root, and the last line switches back.
USER root

# Python 3 from the distribution, a venv, and the pinned runtime packages (apache-flink, pyarrow, pydantic, ...).
# python3-dev brings libpython3.12.so: THREAD mode embeds the interpreter in the TaskManager JVM (pemja) and
# loads that library. gcc is there only for the few sdists among the pins (crcmod, dill, docopt, hdfs) and is
# removed in the same layer.
COPY docker/requirements.txt /tmp/requirements.txt
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc; \
    test "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "${PYTHON_VERSION}"; \
    python3 -m venv "${VENV}"; \
    "${VENV}/bin/pip" install --no-cache-dir -r /tmp/requirements.txt; \
    apt-get purge -y --auto-remove gcc; \
    rm -rf /var/lib/apt/lists/* /tmp/requirements.txt; \
    "${VENV}/bin/python" -c "import pyflink.version as v; assert v.__version__ == '${FLINK_VERSION}', v.__version__"

# The project: sources under METERSTREAM_HOME (the job script, catalogs, flink-conf, what --pyFiles ships) and
# the package installed into the venv (the `meterstream` command). .dockerignore keeps .venv, .cache and .git out.
COPY --chown=flink:flink . ${METERSTREAM_HOME}
RUN set -eux; \
    "${VENV}/bin/pip" install --no-cache-dir --no-deps "${METERSTREAM_HOME}"; \
    rm -rf "${METERSTREAM_HOME}/build" "${METERSTREAM_HOME}"/*.egg-info; \
    "${VENV}/bin/pip" check

# The jars where meterstream.jars looks for them (METERSTREAM_CACHE/jars/<set>/), each set with the marker that
# says "complete": the job never needs Maven at run time. The engine marker records the hash of the sources it was
# built from, as a local build would. The cluster's own classpath gets the Kafka connector and the flink-python jar
# from opt/ (without it a second THREAD-mode job on a TaskManager fails in pemja, JDK 17: NoSuchFieldException
# loadedLibraryNames).
# METERSTREAM_CACHE/var holds runtime state (checkpoints, savepoints, the submitter's client conf): a volume.
COPY --from=jars --chown=flink:flink /jars/connector/ ${METERSTREAM_CACHE}/jars/connector/
COPY --from=jars --chown=flink:flink /jars/engine/ ${METERSTREAM_CACHE}/jars/engine/
RUN set -eux; \
    echo ok > "${METERSTREAM_CACHE}/jars/connector/.complete"; \
    "${VENV}/bin/python" -c "from meterstream.jars import engine_source_hash; print(engine_source_hash())" \
        > "${METERSTREAM_CACHE}/jars/engine/.complete"; \
    "${VENV}/bin/python" -c "from meterstream.jars import kafka_connector_jar, engine_jar; kafka_connector_jar(); engine_jar()"; \
    cp "${METERSTREAM_CACHE}/jars/connector/flink-sql-connector-kafka-5.0.0-2.2.jar" /opt/flink/lib/; \
    cp /opt/flink/opt/flink-python-*.jar /opt/flink/lib/; \
    test -f "/opt/flink/lib/flink-dist-${FLINK_VERSION}.jar"; \
    test -f "/opt/flink/lib/flink-python-${FLINK_VERSION}.jar"; \
    mkdir -p "${METERSTREAM_CACHE}/var"; \
    chown -R flink:flink "${METERSTREAM_CACHE}" /opt/flink/lib

# The cluster configuration: flink-conf/config.yaml (RocksDB, incremental and retained checkpoints, restart
# strategy, Prometheus reporter, memory), with what `meterstream cluster up` fills in for a checkout set for this
# image instead: every address bound to the container's interface (the entrypoint sets jobmanager.rpc.address;
# a TaskManager finds its own address), the venv's interpreter, checkpoints and savepoints on the shared volume
# (the same <var>/cluster/ paths that `meterstream submit` writes into the client's config in the submitter, so
# whichever of the two configurations a setting comes from, it names the same directory).
# Addresses and ports per deployment come from FLINK_PROPERTIES (docker-compose.yml), applied at start.
RUN set -eux; \
    cp "${METERSTREAM_HOME}/flink-conf/config.yaml" /opt/flink/conf/config.yaml; \
    bash /opt/flink/bin/config-parser-utils.sh /opt/flink/conf /opt/flink/bin /opt/flink/lib \
        -Drest.address=0.0.0.0 \
        -Drest.bind-address=0.0.0.0 \
        -Djobmanager.bind-host=0.0.0.0 \
        -Dtaskmanager.bind-host=0.0.0.0 \
        -rmKey taskmanager.host \
        -Dpython.executable=${VENV}/bin/python \
        -Dpython.client.executable=${VENV}/bin/python \
        -Dpython.pythonpath=${VENV}/lib/python${PYTHON_VERSION}/site-packages \
        -Dexecution.checkpointing.dir=file://${METERSTREAM_CACHE}/var/cluster/checkpoints \
        -Dexecution.checkpointing.savepoint-dir=file://${METERSTREAM_CACHE}/var/cluster/savepoints \
        -Dio.tmp.dirs=/tmp; \
    chown flink:flink /opt/flink/conf/config.yaml

USER flink
# ENTRYPOINT and CMD stay the base image's: `jobmanager`, `taskmanager`, or any command (run as is).
