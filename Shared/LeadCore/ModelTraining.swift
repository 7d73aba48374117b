import Foundation

/// `leadctl train`: a time-based split (the newest `holdoutFraction` of leads is the holdout), the model on
/// every feature, and the same regression on the rule score alone, both judged on the same holdout.
package enum ModelTraining {
    package struct Example: Sendable {
        package var createdAt: Date
        package var converted: Bool
        package var ruleScore: Int
        package var features: [Double]

        package init(createdAt: Date, converted: Bool, ruleScore: Int, features: [Double]) {
            self.createdAt = createdAt
            self.converted = converted
            self.ruleScore = ruleScore
            self.features = features
        }
    }

    package struct Evaluation: Sendable {
        package var auc: Double
        package var logLoss: Double
        package var calibration: [ModelMetrics.Decile]
    }

    package struct Report: Sendable {
        package var model: LogisticRegression
        package var trainCount: Int
        package var holdoutCount: Int
        package var trainPositives: Int
        package var holdoutPositives: Int
        package var holdoutFrom: Date
        package var modelEvaluation: Evaluation
        package var ruleEvaluation: Evaluation

        /// The report as stored with the model and printed as JSON.
        package var metrics: JSONValue {
            func evaluation(_ e: Evaluation) -> JSONValue {
                .object([
                    "auc": .double(e.auc), "log_loss": .double(e.logLoss),
                    "calibration": .array(e.calibration.map {
                        .object([
                            "decile": .int(Int64($0.decile)), "count": .int(Int64($0.count)),
                            "mean_predicted": .double($0.meanPredicted), "observed_rate": .double($0.observedRate),
                        ])
                    }),
                ])
            }
            return .object([
                "train": .int(Int64(trainCount)), "holdout": .int(Int64(holdoutCount)),
                "train_positives": .int(Int64(trainPositives)), "holdout_positives": .int(Int64(holdoutPositives)),
                "iterations": .int(Int64(model.iterations)), "converged": .bool(model.converged),
                "model": evaluation(modelEvaluation), "rule_score_only": evaluation(ruleEvaluation),
            ])
        }
    }

    package struct TrainingError: Error, CustomStringConvertible {
        package var description: String
    }

    package static func train(_ examples: [Example], holdoutFraction: Double = 0.2, l2: Double = 1.0) throws -> Report {
        let sorted = examples.sorted { $0.createdAt < $1.createdAt }
        let holdoutCount = Int((Double(sorted.count) * holdoutFraction).rounded())
        let train = Array(sorted.dropLast(holdoutCount))
        let holdout = Array(sorted.suffix(holdoutCount))
        guard train.count >= 50, holdout.count >= 20 else {
            throw TrainingError(description: "need at least 70 labelled leads (have \(sorted.count))")
        }
        guard holdout.contains(where: \.converted), holdout.contains(where: { !$0.converted }) else {
            throw TrainingError(description: "the holdout needs both converted and not converted leads")
        }
        let model = try LogisticRegression.fit(rows: train.map(\.features), labels: train.map(\.converted), l2: l2)
        let rule = try LogisticRegression.fit(rows: train.map { [Double($0.ruleScore)] }, labels: train.map(\.converted), l2: l2)
        let labels = holdout.map(\.converted)
        func evaluate(_ probabilities: [Double]) -> Evaluation {
            Evaluation(
                auc: ModelMetrics.auc(scores: probabilities, labels: labels) ?? .nan,
                logLoss: ModelMetrics.logLoss(probabilities: probabilities, labels: labels),
                calibration: ModelMetrics.calibration(probabilities: probabilities, labels: labels)
            )
        }
        return Report(
            model: model, trainCount: train.count, holdoutCount: holdout.count,
            trainPositives: train.filter(\.converted).count, holdoutPositives: holdout.filter(\.converted).count,
            holdoutFrom: holdout.first!.createdAt,
            modelEvaluation: evaluate(holdout.map { model.probability($0.features) }),
            ruleEvaluation: evaluate(holdout.map { rule.probability([Double($0.ruleScore)]) })
        )
    }
}
