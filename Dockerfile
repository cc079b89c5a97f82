# One image for every alive process: `alive worker`, `alive serve` (web page and chat adapters).
FROM python:3.11-slim-bookworm

# pdqhash builds from source; curl is for the health checks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential curl \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY core ./core
COPY bots ./bots
COPY config ./config
# torch first, pinned, so pip takes the wheel we tested; then alive with every extra it runs.
RUN pip install --no-cache-dir torch==2.13.0 \
 && pip install --no-cache-dir '.[web,telegram,discord,redis,ml,gpu]' \
 && pip install --no-cache-dir --no-deps mediapipe==0.10.14

RUN useradd --create-home --uid 1000 alive && mkdir -p /data /models && chown alive /data /models
USER alive
ENV ALIVE_DATA_DIR=/data \
    HF_HOME=/models \
    ALIVE_WEB_HOST=0.0.0.0
# MiniLM's ONNX export (core.models), made once here into ~/.cache/alive rather than at every
# container start.
RUN python -c "from core.models import minilm_session; minilm_session()"
EXPOSE 8080
CMD ["alive", "serve"]
