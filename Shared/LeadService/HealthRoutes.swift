import Foundation
import Hummingbird
import Prometheus

/// What `/readyz` reports: each dependency and whether it is reachable.
package struct Readiness: Sendable, Encodable {
    package var ready: Bool
    package var checks: [String: Bool]

    package init(checks: [String: Bool], required: Set<String>? = nil) {
        self.checks = checks
        let required = required ?? Set(checks.keys)
        self.ready = checks.allSatisfy { !required.contains($0.key) || $0.value }
    }
}

extension Router {
    /// `GET /healthz` (alive), `GET /readyz` (dependencies reachable, 503 otherwise), `GET /metrics`.
    package func addHealthRoutes(
        registry: PrometheusCollectorRegistry,
        readiness: @escaping @Sendable () async -> Readiness
    ) {
        get("/healthz") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#))
            )
        }
        get("/readyz") { _, _ -> Response in
            let report = await readiness()
            let body = try JSONEncoder().encode(report)
            return Response(
                status: report.ready ? .ok : .serviceUnavailable,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: body))
            )
        }
        get("/metrics") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer()))
            )
        }
    }
}
