# syntax=docker/dockerfile:1
# Build: the same steps as `make build`.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o /out/ctigate ./cmd/ctigate \
 && mkdir -p /out/data

# Run: static binary, no shell, non-root.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ctigate /usr/local/bin/ctigate
COPY --from=build --chown=nonroot:nonroot /out/data /var/lib/ctigate
COPY configs/ /etc/ctigate/
USER nonroot:nonroot
WORKDIR /var/lib/ctigate
ENV CTIGATE_DATA_DIR=/var/lib/ctigate
EXPOSE 8443
VOLUME ["/var/lib/ctigate"]
HEALTHCHECK --interval=30s --timeout=3s CMD ["/usr/local/bin/ctigate", "health", "--url", "https://127.0.0.1:8443/healthz", "--insecure"]
ENTRYPOINT ["/usr/local/bin/ctigate"]
CMD ["serve", "--config", "/etc/ctigate/ctigate.yaml"]
