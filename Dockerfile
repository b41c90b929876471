# Listener service image. Configure with a mounted config file and environment secrets:
#   docker run -p 8080:8080 -v $PWD/config.yaml:/app/config.yaml \
#     -e LISTENER_API_TOKEN=... listener serve --config /app/config.yaml
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    LISTENER_HOST=0.0.0.0

WORKDIR /app
RUN useradd --create-home --uid 10001 listener

COPY pyproject.toml README.md ./
COPY listener ./listener
COPY connectors ./connectors
COPY sla ./sla
COPY responders ./responders
COPY migrations ./migrations
COPY templates ./templates
COPY examples ./examples
COPY config.example.yaml alembic.ini ./
RUN pip install -e . && mkdir -p /app/data && chown -R listener:listener /app/data

USER listener
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz')"
ENTRYPOINT ["listener"]
CMD ["serve", "--config", "/app/config.example.yaml"]
