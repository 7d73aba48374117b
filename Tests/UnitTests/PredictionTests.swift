import Foundation
import LeadCore
import Testing

@Suite struct PredictionTests {
    /// Rows from a known logistic model: z = 0.5 + 2·x0 − 1.5·x1 (x2 is noise, x3 is constant).
    func synthetic(count: Int, seed: UInt64) -> (rows: [[Double]], labels: [Bool]) {
        var random = SplitMix64(seed: seed)
        func normal() -> Double {
            let u = max(random.nextDouble(), 1e-12)
            return (-2 * log(u)).squareRoot() * cos(2 * .pi * random.nextDouble())
        }
        var rows: [[Double]] = []
        var labels: [Bool] = []
        for _ in 0..<count {
            let x = [normal(), normal() * 3 + 10, normal(), 4]
            let z = 0.5 + 2 * x[0] - 1.5 * (x[1] - 10) / 3
            rows.append(x)
            labels.append(random.nextDouble() < LogisticRegression.sigmoid(z))
        }
        return (rows, labels)
    }

    @Test func recoversAKnownModel() throws {
        let data = synthetic(count: 20_000, seed: 3)
        let model = try LogisticRegression.fit(rows: data.rows, labels: data.labels, l2: 0.1)
        #expect(model.converged && model.iterations < 15)
        // Standardized weights: x0 has sd 1, x1 sd 3 (its weight per standardized unit is -1.5).
        #expect(abs(model.weights[0] - 2) < 0.1, "\(model.weights)")
        #expect(abs(model.weights[1] + 1.5) < 0.1, "\(model.weights)")
        #expect(abs(model.weights[2]) < 0.1)
        #expect(model.weights[3] == 0 && model.scales[3] == 1)  // a constant column neither divides by zero nor matters
        let auc = try #require(ModelMetrics.auc(scores: data.rows.map(model.probability), labels: data.labels))
        #expect(auc > 0.85)
    }

    @Test func sameDataSameModel() throws {
        let data = synthetic(count: 2000, seed: 9)
        #expect(try LogisticRegression.fit(rows: data.rows, labels: data.labels) == LogisticRegression.fit(rows: data.rows, labels: data.labels))
    }

    @Test func probabilitiesAreAlwaysFinite() throws {
        let data = synthetic(count: 500, seed: 1)
        let model = try LogisticRegression.fit(rows: data.rows, labels: data.labels)
        for features in [[], [Double.nan, .infinity, -.infinity, 0], [1e300, -1e300, 0, 0]] {
            let p = model.probability(features)
            #expect(p.isFinite && p >= 0 && p <= 1, "\(features)")
        }
    }

    @Test func oneClassIsAClearError() {
        #expect(throws: LogisticRegression.FitError.self) {
            try LogisticRegression.fit(rows: [[1], [2]], labels: [true, true])
        }
    }

    @Test func aucOfKnownRankings() {
        #expect(ModelMetrics.auc(scores: [0.1, 0.2, 0.8, 0.9], labels: [false, false, true, true]) == 1)
        #expect(ModelMetrics.auc(scores: [0.9, 0.8, 0.2, 0.1], labels: [false, false, true, true]) == 0)
        #expect(ModelMetrics.auc(scores: [0.5, 0.5, 0.5, 0.5], labels: [false, true, false, true]) == 0.5)
        #expect(ModelMetrics.auc(scores: [0.1, 0.4, 0.35, 0.8], labels: [false, false, true, true]) == 0.75)
        #expect(ModelMetrics.auc(scores: [1], labels: [true]) == nil)
    }

    @Test func simulationIsReproducibleAndFollowsItsHiddenModel() {
        let now = Date(timeIntervalSince1970: 1_790_000_000)
        let first = LeadSimulation.generate(count: 3000, seed: 11, now: now)
        let second = LeadSimulation.generate(count: 3000, seed: 11, now: now)
        #expect(first.map(\.status) == second.map(\.status))
        #expect(first.map { $0.interactions.map(\.eventID) } == second.map { $0.interactions.map(\.eventID) })
        // The hidden probabilities rank the simulated outcomes well (the ceiling a trained model can approach).
        let auc = ModelMetrics.auc(scores: first.map(\.probability), labels: first.map { ["booked", "converted"].contains($0.status) })
        #expect((auc ?? 0) > 0.8)
    }
}
