import AMQP
import ServiceLifecycle

/// Keeps a broker connection for the life of the service group and closes it (after outstanding confirms)
/// on shutdown. Put it before the services that use the connection: the group stops them first.
package struct AMQPConnectionService: Service, CustomStringConvertible {
    package let connection: AMQPConnection

    package init(_ connection: AMQPConnection) {
        self.connection = connection
    }

    package var description: String { "AMQPConnectionService(\(connection.name))" }

    package func run() async throws {
        try? await gracefulShutdown()
        await connection.close()
    }
}
