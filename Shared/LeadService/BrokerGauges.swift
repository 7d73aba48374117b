import AMQP
import Metrics
import ServiceLifecycle

/// Samples each broker connection every second into gauges: `amqp_connected` (1/0), `amqp_blocked` (1/0)
/// and `amqp_unconfirmed_messages` (publishes in flight).
package struct BrokerGauges: Service, CustomStringConvertible {
    let connections: [AMQPConnection]

    package init(_ connections: [AMQPConnection]) {
        self.connections = connections
    }

    package var description: String { "BrokerGauges" }

    package func run() async throws {
        let gauges = connections.map { connection in
            let dimensions = [("connection", connection.name)]
            return (
                connection,
                Gauge(label: "amqp_connected", dimensions: dimensions),
                Gauge(label: "amqp_blocked", dimensions: dimensions),
                Gauge(label: "amqp_unconfirmed_messages", dimensions: dimensions)
            )
        }
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            for (connection, connected, blocked, unconfirmed) in gauges {
                connected.record(connection.isConnected ? 1 : 0)
                blocked.record(connection.isBlocked ? 1 : 0)
                unconfirmed.record(connection.unconfirmedCount)
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
        }
    }
}
