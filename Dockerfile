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
# 8443: TAXII 2.1 (HTTPS); 9464: /metrics, /healthz, /readyz (ops.listen)
EXPOSE 8443 9464
VOLUME ["/var/lib/ctigate"]
HEALTHCHECK --interval=30s --timeout=3s CMD ["/usr/local/bin/ctigate", "health", "--url", "http://127.0.0.1:9464/readyz"]
ENTRYPOINT ["/usr/local/bin/ctigate"]
CMD ["serve", "--config", "/etc/ctigate/ctigate.yaml"]
