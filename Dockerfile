# The dockmesh controller image: `dockmesh controller` as user 65532, nothing else.
#
#   docker build -t dockmesh/controller:0.1.0 .
#
# Two ways to get /app, chosen with --build-arg APP_FROM:
#   source  (default) npm ci, build (tools/build.js) and prune to production dependencies in a build stage;
#   context           take an already built tree from the build context's .docker-app/
#                     (package.json, bin/, dist/, crds/, production node_modules/), for CI that
#                     builds outside Docker or a machine that cannot reach a package registry.
# NODE_IMAGE is any Debian-based Node.js 20 image (node:20-bookworm-slim by default).
ARG NODE_IMAGE=node:20-bookworm-slim
ARG APP_FROM=source

FROM ${NODE_IMAGE} AS source
WORKDIR /app
# better-sqlite3 (the embedded store of `dockmesh up`) compiles from source when no prebuilt
# binary fits the platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# --ignore-scripts: the root package's "prepare" (a build) needs the sources, copied below;
# of the dependencies only better-sqlite3 needs its install script.
RUN npm ci --ignore-scripts --no-audit --no-fund && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.app.json ./
COPY api/ api/
COPY vendor/ vendor/
COPY bin/ bin/
COPY cli/ cli/
COPY controllers/ controllers/
COPY crds/ crds/
COPY hosts/ hosts/
COPY mesh/ mesh/
COPY runtime/ runtime/
COPY store/ store/
COPY tools/build.js tools/
# esbuild compiles dockmesh itself (tsconfig.app.json's directories) and bundles vendor/.
RUN node tools/build.js \
 && find dist -name '*.map' -delete \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && mkdir -p /out \
 && cp -r package.json bin dist crds node_modules /out/

FROM scratch AS context
COPY .docker-app/ /out/

FROM ${APP_FROM} AS app

FROM ${NODE_IMAGE}
LABEL org.opencontainers.image.title="dockmesh" \
      org.opencontainers.image.description="WireGuard mesh between Docker hosts, driven by Kubernetes resources" \
      org.opencontainers.image.licenses="Apache-2.0"
# MALLOC_ARENA_MAX: fewer glibc malloc arenas, less native memory (runtime/heap.ts IMAGE_ENV).
ENV NODE_ENV=production \
    DOCKMESH_LOG_FORMAT=json \
    MALLOC_ARENA_MAX=2
COPY --from=app /out/ /app/
WORKDIR /app
# No shell, package manager or write access needed at run time: run it with a read-only root
# file system, as a non-root user, without capabilities (the Deployment does).
USER 65532:65532
EXPOSE 8080
# A small young generation: the controller's garbage is short-lived (one reconcile), and the
# default (semi-spaces of up to 16 MB) costs tens of MB of RSS for nothing (runtime/heap.ts
# sizes the old generation; docs/benchmarks.md has the figures).
ENTRYPOINT ["node", "--max-semi-space-size=4", "/app/bin/dockmesh.js"]
CMD ["controller", "--leader-elect", "--metrics-bind-address=:8080"]
