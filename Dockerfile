# syntax=docker/dockerfile:1
#
# The Portcullis image: the webhook and the registry roles (and all three with `up`). Multi-stage:
# the build stage compiles TypeScript with the dev dependencies; the runtime stage gets the compiled
# JavaScript and production dependencies only, and runs as an unprivileged user.
#
#   docker build -t portcullis:0.1.0 .
#   docker run --rm -p 8443:8443 -p 5000:5000 -p 8080:8080 portcullis:0.1.0 up \
#     --webhook-listen 0.0.0.0:8443 --registry-listen 0.0.0.0:5000 --scanner-listen 0.0.0.0:8080
#
# The scanner role needs Trivy: see Dockerfile.scanner. docs/install.md has the details.

ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# better-sqlite3 downloads a prebuilt binary; the toolchain is the fallback when none matches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are here; the native module is built next.
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORTCULLIS_DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY policies ./policies
COPY webhooks ./webhooks
# A fixed numeric uid/gid, so that `runAsNonRoot` can be verified and volumes get a known owner.
RUN groupadd --system --gid 10001 portcullis \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home portcullis \
 && mkdir -p /data \
 && chown 10001:10001 /data
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8443 5000 8080
ENTRYPOINT ["node", "/app/bin/portcullis.js"]
CMD ["up", "--webhook-listen", "0.0.0.0:8443", "--registry-listen", "0.0.0.0:5000", "--scanner-listen", "0.0.0.0:8080"]
