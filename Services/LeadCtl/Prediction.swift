import ArgumentParser
import Foundation
import LeadCore
import LeadService
import LeadStore
import Logging

struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a synthetic lead history drawn from a known hidden model (see LeadSimulation) into DATABASE_URL."
    )

    @Option(help: "How many leads.") var leads = 10_000
    @Option(help: "Random seed: the same seed writes the same history.") var seed: UInt64 = 1
    @Option(help: "Spread the leads over this many days before now.") var days = 180

    func run() async throws {
        let configuration = try ServiceConfiguration()
        let logger = Logger(label: "leadctl")
        let started = ContinuousClock.now
        let history = LeadSimulation.generate(count: leads, seed: seed, now: Date(), days: days)
        let total = leads
        try await withDatabase(configuration, logger: logger) { database in
            try await PredictionStore.insert(
                simulation: history, seed: seed, scorer: InteractionScorer(), client: database.client, logger: logger
            ) { done in
                if done % 5000 == 0 || done == total { print("simulate: \(done)/\(total) leads written") }
            }
        }
        let positives = history.filter { ["booked", "converted"].contains($0.status) }.count
        print("simulate: \(leads) leads (\(positives) booked or converted), \(history.reduce(0) { $0 + $1.interactions.count }) interactions, seed \(seed), in \(ContinuousClock.now - started)")
    }
}

struct Train: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fit a regularized logistic regression on labelled leads (time-based split), compare it with the rule score, store it (inactive)."
    )

    @Option(help: "An open lead counts as not converted this many days after creation.") var labelWindowDays = 30
    @Option(help: "Train on leads created in the last this many days.") var days = 365
    @Option(help: "The newest fraction of leads held out for evaluation.") var holdout = 0.2
    @Option(help: "L2 penalty on the standardized weights.") var l2 = 1.0
    @Flag(help: "Print the report as one JSON line.") var json = false

    func run() async throws {
        let configuration = try ServiceConfiguration()
        let logger = Logger(label: "leadctl")
        let started = ContinuousClock.now
        let now = Date()
        let from = now.addingTimeInterval(-Double(days) * 86_400)
        let (report, names, id) = try await withDatabase(configuration, logger: logger) { database in
            let names = try await PredictionStore.featureNames(client: database.client, logger: logger)
            let examples = try await PredictionStore.examples(
                from: from, to: now, labelWindowDays: labelWindowDays, client: database.client, logger: logger
            )
            if !json { print("train: \(examples.count) labelled leads read in \(ContinuousClock.now - started)") }
            let report = try ModelTraining.train(
                examples.map { ModelTraining.Example(createdAt: $0.createdAt, converted: $0.converted, ruleScore: $0.ruleScore, features: $0.features) },
                holdoutFraction: holdout, l2: l2
            )
            let window: JSONValue = .object([
                "from": .string(JSONCoding.formatTimestamp(from)), "to": .string(JSONCoding.formatTimestamp(now)),
                "holdout_from": .string(JSONCoding.formatTimestamp(report.holdoutFrom)),
                "label_window_days": .int(Int64(labelWindowDays)), "l2": .double(l2),
            ])
            let id = try await PredictionStore.save(
                report.model, features: names, metrics: report.metrics, window: window, client: database.client, logger: logger
            )
            return (report, names, id)
        }
        if json {
            guard case .object(var object) = report.metrics else { return }
            object["model_id"] = .int(Int64(id))
            object["weights"] = .object(Dictionary(uniqueKeysWithValues: zip(names, report.model.weights.map { JSONValue.double($0) })))
            print(JSONWriter.string(.object(object)))
            return
        }
        let m = report.modelEvaluation
        let r = report.ruleEvaluation
        print("train: \(report.trainCount) leads (\(report.trainPositives) converted), holdout \(report.holdoutCount) newest (\(report.holdoutPositives) converted)")
        print("train: \(report.model.converged ? "converged" : "NOT converged") after \(report.model.iterations) Newton steps")
        print(String(format: "holdout     AUC     log loss"))
        print(String(format: "model       %.3f   %.4f", m.auc, m.logLoss))
        print(String(format: "rule score  %.3f   %.4f", r.auc, r.logLoss))
        print("calibration by decile of predicted probability (model):")
        print("decile  leads  predicted  observed")
        for decile in m.calibration {
            print(String(format: "%6d  %5d  %8.1f%%  %7.1f%%", decile.decile, decile.count, decile.meanPredicted * 100, decile.observedRate * 100))
        }
        print("weights (standardized), largest first:")
        for (name, weight) in zip(names, report.model.weights).sorted(by: { abs($0.1) > abs($1.1) }) {
            print(String(format: "  %+.3f  ", weight) + name)
        }
        print("model \(id) stored, not active: `leadctl model activate \(id)` to use it (\(ContinuousClock.now - started) in all)")
    }
}

struct Model: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prediction models: list them, activate one (the scorer picks it up at once), deactivate.",
        subcommands: [List.self, Activate.self, Deactivate.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List stored models with their holdout metrics.")

        func run() async throws {
            let configuration = try ServiceConfiguration()
            let logger = Logger(label: "leadctl")
            let models = try await withDatabase(configuration, logger: logger) { database in
                try await PredictionStore.list(client: database.client, logger: logger)
            }
            if models.isEmpty { print("no models: run `leadctl train`") }
            for model in models {
                let metrics = (try? JSONParser.parse(model.metrics.utf8)) ?? .null
                let auc = metrics["model"]?["auc"].flatMap { if case .double(let v) = $0 { v } else { nil } } ?? .nan
                let rule = metrics["rule_score_only"]?["auc"].flatMap { if case .double(let v) = $0 { v } else { nil } } ?? .nan
                print((model.active ? "* " : "  ") + String(format: "%3d  ", model.id) + JSONCoding.formatTimestamp(model.createdAt)
                    + String(format: "  holdout AUC %.3f (rule score %.3f)", auc, rule))
            }
        }
    }

    struct Activate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make model N the one the scorer uses.")
        @Argument var id: Int

        func run() async throws {
            let configuration = try ServiceConfiguration()
            let logger = Logger(label: "leadctl")
            let model = id
            _ = try await withDatabase(configuration, logger: logger) { database in
                try await PredictionStore.activate(model, client: database.client, logger: logger)
            }
            print("model \(id) active: new lead updates carry conversion_probability")
        }
    }

    struct Deactivate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Use no model (conversion_probability stays as it is, no new ones).")

        func run() async throws {
            let configuration = try ServiceConfiguration()
            let logger = Logger(label: "leadctl")
            try await withDatabase(configuration, logger: logger) { database in
                try await PredictionStore.deactivate(client: database.client, logger: logger)
            }
            print("no model active")
        }
    }
}
