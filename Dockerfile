# syntax=docker/dockerfile:1
# Atlas Backup GraphQL Gateway: compiled with tsc in the build stage; the runtime image holds plain
# JavaScript, the schema files it reads at run time and production dependencies only (no tsx, no
# TypeScript). Layout in the image, as in the repo: /app/src/**/*.js next to /app/schema, because the
# code finds schema/*.graphql and schema/atlas/openapi.json relative to its own files.
#
#   docker build -t atlas-backup-gateway .
#   docker run --rm -p 4000:4000 atlas-backup-gateway        # demo mode: the embedded simulator
#   docker run --rm -p 4000:4000 -e MONGODB_ATLAS_CLIENT_ID=… -e MONGODB_ATLAS_CLIENT_SECRET=… \
#     -e GATEWAY_AUTH=apikey -e GATEWAY_API_KEYS_FILE=/run/secrets/keys.json atlas-backup-gateway
#
# docs/docker.md says more; test/ops/dockerfile.test.ts checks this file and boots the same layout.
# Node 24, the active LTS line (package.json engines: 22.15+ or 24+).
ARG NODE_IMAGE=node:24-slim

# All dependencies, for the compiler.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts

# TypeScript → JavaScript (ES modules, same folders) in /app/build/src; type errors fail the build.
FROM deps AS build
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json --noEmit false --allowImportingTsExtensions false --outDir build --rootDir .

# Production dependencies only (none of them needs an install script).
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=4000
WORKDIR /app
# Owned by root and read-only for the process; it runs as the image's unprivileged `node` user.
COPY --from=prod-deps /app/node_modules ./node_modules
COPY package.json ./
COPY schema ./schema
COPY --from=build /app/build/src ./src
USER node
EXPOSE 4000
# Liveness through node's own fetch (no curl in the slim image).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The gateway handles SIGTERM itself (graceful shutdown); run with `docker run --init` for zombie reaping.
CMD ["node", "src/index.js"]
