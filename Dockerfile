# The clickstream Python image: one image, three roles (api, etl, auth), chosen by the
# command in docker-compose.yml. Configured only through CLICKSTREAM_* variables.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /app

# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml setup.cfg README.md ./
RUN python -c 'import configparser; c = configparser.ConfigParser(); c.read("setup.cfg"); print(c["options"]["install_requires"])' \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Only the packages: var/ (jars, data, logs of the native services) stays out of the image.
# var/spool is created here for the API's user: a fresh named volume mounted on it
# (docker-compose.yml) takes its owner from this directory, and root could not be written.
COPY core ./core
COPY plugins ./plugins
COPY etl ./etl
COPY auth_service ./auth_service
RUN pip install --no-deps . \
    && useradd --create-home --uid 10001 clickstream \
    && mkdir -p /app/var/spool \
    && chown -R clickstream /app/var

USER clickstream
EXPOSE 8000 8001
# granian, as make up and the benchmarks run it; CLICKSTREAM_API_SERVER picks gunicorn.
CMD ["python", "-m", "core.serve"]
