import Foundation

/// Where and how to reach the broker, parsed from `AMQP_URL` (one URL, or several separated by commas
/// for a cluster: the connection moves to the next one when a connection is lost).
package struct AMQPConfiguration: Sendable, CustomStringConvertible {
    package struct Endpoint: Sendable, Equatable, CustomStringConvertible {
        package var host: String
        package var port: Int
        package var user: String
        package var password: String
        package var vhost: String

        /// The URL without its password, safe for logs.
        package var description: String { "amqp://\(user)@\(host):\(port)/\(vhost == "/" ? "%2F" : vhost)" }
    }

    package var endpoints: [Endpoint]
    /// Heartbeat interval negotiated with the broker, in seconds.
    package var heartbeat: Int = 30
    /// Timeout for the TCP connect, the handshake and every RPC.
    package var connectTimeout: Duration = .seconds(2)
    /// A publish that is not confirmed within this time fails with `AMQPError.Code.confirmTimeout`.
    package var confirmTimeout: Duration = .seconds(10)
    /// Unconfirmed messages allowed on one connection before `publish` pushes back.
    package var maxUnconfirmed: Int = 4096

    package init(endpoints: [Endpoint]) {
        self.endpoints = endpoints
    }

    /// Parses `amqp://user:pass@host:port/vhost`, several separated by commas.
    package init(url: String) throws(AMQPError) {
        let parts = url.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !parts.isEmpty else { throw AMQPError(.invalidURL, "AMQP_URL is empty") }
        var endpoints: [Endpoint] = []
        for part in parts { endpoints.append(try Self.parseEndpoint(part)) }
        self.endpoints = endpoints
    }

    package var description: String { endpoints.map(\.description).joined(separator: ",") }

    static func parseEndpoint(_ text: String) throws(AMQPError) -> Endpoint {
        guard let components = URLComponents(string: text), components.scheme == "amqp" else {
            throw AMQPError(.invalidURL, "not an amqp:// URL (amqps is not supported)")
        }
        guard let host = components.host, !host.isEmpty else {
            throw AMQPError(.invalidURL, "AMQP URL has no host")
        }
        var vhost = components.percentEncodedPath
        if vhost.hasPrefix("/") { vhost.removeFirst() }
        vhost = vhost.removingPercentEncoding ?? vhost
        if vhost.isEmpty { vhost = "/" }
        return Endpoint(
            host: host,
            port: components.port ?? 5672,
            user: components.user ?? "guest",
            password: components.password ?? "guest",
            vhost: vhost
        )
    }
}
