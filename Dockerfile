# One image for the four processes; docker-compose.yml picks the process with `command`
# (gateway | order | inventory | payment). The processes run the compiled JavaScript (dist/, with
# source maps), so the image carries dist/ and the production node_modules, no TypeScript.

ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: install everything (nothing native: the stores use node:sqlite, so no compiler or
# Python), build dist/, then drop dev deps
FROM ${NODE_IMAGE} AS build
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
# Nothing but Node: `sagas certs` makes the TLS certificates in-process (no openssl).
WORKDIR /app
# The code stays owned by root (read-only for the app); only /data is the app's.
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json package-lock.json ./
COPY bin ./bin
# sagas chaos <name> finds the shipped fault scenarios here.
COPY scenarios ./scenarios
# /tls/<identity>/: each process's mutual-TLS identity (TLS_DIR=/tls), one folder per process so
# that docker-compose mounts each its own volume there, and its "certs" service writes them. A new
# named volume takes the mount point's owner and mode from the image: node, 0700. /data likewise
# (the databases; 0700, their files 0600). /tls is no VOLUME: a container mounts the folder(s) it
# needs, and an anonymous volume over all of /tls would only hold empty folders.
RUN mkdir -p /data /tls/gateway /tls/order /tls/inventory /tls/payment \
 && chown -R node:node /data /tls \
 && chmod 700 /data /tls /tls/gateway /tls/order /tls/inventory /tls/payment
VOLUME ["/data"]
USER node
# gateway HTTP and admin (ADMIN_ADDR); order, payment, inventory gRPC; their metrics ports
EXPOSE 8080 8081 9090 9091 9092 9464 9465 9466
# Ready, not only alive: the gateway's /readyz (every participant and the saga log answer), or a
# participant's /readyz on its METRICS_ADDR; `sagas health` asks whichever of them this container runs.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 CMD ["node", "bin/sagas.js", "health"]
ENTRYPOINT ["node", "bin/sagas.js", "start"]
CMD ["gateway"]
