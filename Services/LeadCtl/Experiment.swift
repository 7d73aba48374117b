import ArgumentParser
import Foundation
import LeadCore
import LeadService
import LeadStore
import Logging

struct Experiment: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The prompt experiment: per variant, sessions, prompts, conversions, rate with 95% CI, and significance."
    )

    @Flag(help: "Print JSON instead of a table.") var json = false

    func run() async throws {
        let configuration = try ServiceConfiguration()
        let logger = Logger(label: "leadctl")
        let report = try await withDatabase(configuration, logger: logger) { database in
            try await ExperimentStore.report(client: database.client, logger: logger)
        }
        if json {
            print(String(decoding: try JSONEncoder().encode(report), as: UTF8.self))
            return
        }
        print("variant  sessions  prompts  prompted  converted  rate     95% CI")
        for arm in report.arms {
            print(
                arm.variant.padding(toLength: 9, withPad: " ", startingAt: 0)
                    + String(arm.sessions).padding(toLength: 10, withPad: " ", startingAt: 0)
                    + String(arm.prompts).padding(toLength: 9, withPad: " ", startingAt: 0)
                    + String(arm.promptedSessions).padding(toLength: 10, withPad: " ", startingAt: 0)
                    + String(arm.conversions).padding(toLength: 11, withPad: " ", startingAt: 0)
                    + percent(arm.conversionRate).padding(toLength: 9, withPad: " ", startingAt: 0)
                    + "\(percent(arm.confidenceLow)) – \(percent(arm.confidenceHigh))"
            )
        }
        if let z = report.zScore, let p = report.pValue {
            let verdict = report.significant ? "the variants differ (α = 0.05)" : "no significant difference (α = 0.05)"
            print(String(format: "z = %.3f, p = %.4f: ", z, p) + verdict)
        } else {
            print("not enough data for a z-test")
        }
    }

    private func percent(_ value: Double) -> String { String(format: "%.1f%%", value * 100) }
}
