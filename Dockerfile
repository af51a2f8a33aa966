# syntax=docker/dockerfile:1
# c2bot: a static binary on a distroless base, running as a non-root user,
# with its bbolt database on a volume.
#
#   docker build -t c2bot .
#   docker run -p 3978:3978 -v c2bot-data:/data --env-file c2bot.env c2bot serve

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/c2bot ./cmd/c2bot \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/c2bot /usr/local/bin/c2bot
# The database directory belongs to the nonroot user (65532).
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV C2_DB=/data/c2bot.db \
    C2_LISTEN=:3978
VOLUME ["/data"]
EXPOSE 3978
ENTRYPOINT ["/usr/local/bin/c2bot"]
CMD ["serve"]
