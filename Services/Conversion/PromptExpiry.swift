import LeadService
import LeadStore
import Logging
import PostgresNIO
import ServiceLifecycle

/// Once a minute, prompts unanswered for the conversion window (`CONVERSION_WINDOW_HOURS`, 24) are counted
/// as not converted.
struct PromptExpiry: Service, CustomStringConvertible {
    let client: PostgresClient
    let window: Duration
    let gate: StartGate
    let logger: Logger

    var description: String { "PromptExpiry" }

    func run() async throws {
        guard await gate.wait() else { return }
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                let expired = try await ConversionStore.expirePrompts(olderThan: window, client: client, logger: logger)
                if expired > 0 { logger.info("prompts expired unanswered", metadata: ["prompts": "\(expired)"]) }
            } catch {
                logger.warning("cannot expire prompts", metadata: ["error": "\(String(reflecting: error))"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(60)) }
        }
    }
}
