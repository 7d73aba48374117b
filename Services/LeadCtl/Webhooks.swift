import ArgumentParser
import Foundation
import LeadCore
import LeadService
import LeadStore
import Logging

struct Webhooks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Webhook deliveries: list them, re-send failed ones.",
        subcommands: [List.self, Resend.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List deliveries, newest first.")
        @Option(help: "pending, delivered, failed or disabled (default: all).") var status: String?
        @Option(help: "At most this many.") var limit = 50

        func run() async throws {
            if let status, !["pending", "delivered", "failed", "disabled"].contains(status) {
                throw ValidationError("--status must be pending, delivered, failed or disabled")
            }
            let configuration = try ServiceConfiguration()
            let logger = Logger(label: "leadctl")
            let rows = try await withDatabase(configuration, logger: logger) { database in
                try await AlertStore.list(status: status, limit: limit, client: database.client, logger: logger)
            }
            print("id      status     attempts  last  kind                    url / error")
            for row in rows {
                let host = URLComponents(string: row.url)?.host ?? row.url
                print(
                    String(row.id).padding(toLength: 8, withPad: " ", startingAt: 0)
                        + row.status.padding(toLength: 11, withPad: " ", startingAt: 0)
                        + String(row.attempts).padding(toLength: 10, withPad: " ", startingAt: 0)
                        + (row.lastStatus.map(String.init) ?? "-").padding(toLength: 6, withPad: " ", startingAt: 0)
                        + row.kind.padding(toLength: 24, withPad: " ", startingAt: 0)
                        + host + (row.lastError.map { "  (\($0.prefix(60)))" } ?? "")
                )
            }
            if rows.isEmpty { print("no deliveries") }
        }
    }

    struct Resend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-send failed deliveries (they get a new retry window).")
        @Option(help: "The delivery to re-send.") var id: Int64?
        @Flag(help: "Re-send every failed delivery.") var allFailed = false

        func validate() throws {
            guard (id != nil) != allFailed else { throw ValidationError("give either --id N or --all-failed") }
        }

        func run() async throws {
            let configuration = try ServiceConfiguration()
            let logger = Logger(label: "leadctl")
            let count = try await withDatabase(configuration, logger: logger) { database in
                try await AlertStore.resend(id: id, client: database.client, logger: logger)
            }
            print(count == 0 ? "nothing to re-send (only failed deliveries can be)" : "re-queued \(count) deliver\(count == 1 ? "y" : "ies")")
        }
    }
}
