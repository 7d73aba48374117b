import Foundation

/// L2-regularized logistic regression on standardized features, fitted by Newton's method (iteratively
/// reweighted least squares) with a Cholesky solve. Deterministic: the same rows give the same model.
///
/// Numerics: features are standardized (constant columns get scale 1, so they cannot divide by zero), the
/// penalty keeps the Hessian positive definite, the linear term is clamped before `exp`, and the fit
/// reports whether it converged (largest coefficient step below `tolerance`) and after how many steps.
package struct LogisticRegression: Sendable, Equatable {
    package var means: [Double]
    package var scales: [Double]
    package var weights: [Double]
    package var intercept: Double
    package var iterations: Int
    package var converged: Bool

    package struct FitError: Error, CustomStringConvertible {
        package var description: String
    }

    /// Fits `labels` (true = converted) from `rows` (one feature vector per lead). `l2` is the penalty on
    /// the standardized weights (not on the intercept).
    package static func fit(
        rows: [[Double]],
        labels: [Bool],
        l2: Double = 1.0,
        maxIterations: Int = 50,
        tolerance: Double = 1e-8
    ) throws(FitError) -> LogisticRegression {
        guard let width = rows.first?.count, rows.count == labels.count else {
            throw FitError(description: "no training rows")
        }
        guard labels.contains(true), labels.contains(false) else {
            throw FitError(description: "training needs both converted and not converted leads")
        }
        guard rows.allSatisfy({ $0.count == width && $0.allSatisfy(\.isFinite) }) else {
            throw FitError(description: "every row needs \(width) finite features")
        }
        let count = Double(rows.count)
        var means = [Double](repeating: 0, count: width)
        var scales = [Double](repeating: 0, count: width)
        for row in rows { for j in 0..<width { means[j] += row[j] } }
        for j in 0..<width { means[j] /= count }
        for row in rows { for j in 0..<width { scales[j] += (row[j] - means[j]) * (row[j] - means[j]) } }
        for j in 0..<width {
            let sd = (scales[j] / count).squareRoot()
            scales[j] = sd > 1e-12 ? sd : 1
        }
        // Design matrix with a leading 1 for the intercept, standardized.
        let size = width + 1
        let design: [[Double]] = rows.map { row in [1] + (0..<width).map { (row[$0] - means[$0]) / scales[$0] } }
        let positives = Double(labels.filter { $0 }.count)
        var beta = [Double](repeating: 0, count: size)
        beta[0] = log(positives / (count - positives))  // start from the base rate
        var converged = false
        var iterations = 0
        while iterations < maxIterations {
            iterations += 1
            var gradient = [Double](repeating: 0, count: size)
            var hessian = [Double](repeating: 0, count: size * size)
            for (x, label) in zip(design, labels) {
                let p = sigmoid(dot(beta, x))
                let residual = (label ? 1 : 0) - p
                let weight = max(p * (1 - p), 1e-12)
                for a in 0..<size {
                    gradient[a] += residual * x[a]
                    let wa = weight * x[a]
                    for b in a..<size { hessian[a * size + b] += wa * x[b] }
                }
            }
            for a in 1..<size {
                gradient[a] -= l2 * beta[a]
                hessian[a * size + a] += l2
            }
            for a in 0..<size { for b in 0..<a { hessian[a * size + b] = hessian[b * size + a] } }
            let step = try solveCholesky(hessian, gradient, size: size)
            var largest = 0.0
            for a in 0..<size {
                beta[a] += step[a]
                largest = max(largest, abs(step[a]))
            }
            guard beta.allSatisfy(\.isFinite) else { throw FitError(description: "the fit diverged") }
            if largest < tolerance {
                converged = true
                break
            }
        }
        return LogisticRegression(
            means: means, scales: scales, weights: Array(beta.dropFirst()), intercept: beta[0],
            iterations: iterations, converged: converged
        )
    }

    package init(means: [Double], scales: [Double], weights: [Double], intercept: Double, iterations: Int = 0, converged: Bool = true) {
        self.means = means
        self.scales = scales
        self.weights = weights
        self.intercept = intercept
        self.iterations = iterations
        self.converged = converged
    }

    /// The probability of conversion; always finite, missing features count as the training mean.
    package func probability(_ features: [Double]) -> Double {
        var z = intercept
        for j in 0..<weights.count {
            let value = j < features.count && features[j].isFinite ? features[j] : means[j]
            z += weights[j] * (value - means[j]) / scales[j]
        }
        return Self.sigmoid(z)
    }

    package static func sigmoid(_ z: Double) -> Double {
        1 / (1 + exp(-min(30, max(-30, z))))
    }

    private static func dot(_ a: [Double], _ b: [Double]) -> Double {
        var sum = 0.0
        for i in 0..<a.count { sum += a[i] * b[i] }
        return sum
    }

    /// Solves `matrix · x = vector` for a symmetric positive-definite matrix (row-major).
    private static func solveCholesky(_ matrix: [Double], _ vector: [Double], size n: Int) throws(FitError) -> [Double] {
        var l = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                var sum = matrix[i * n + j]
                for k in 0..<j { sum -= l[i * n + k] * l[j * n + k] }
                if i == j {
                    guard sum > 0 else { throw FitError(description: "the Hessian is not positive definite") }
                    l[i * n + i] = sum.squareRoot()
                } else {
                    l[i * n + j] = sum / l[j * n + j]
                }
            }
        }
        var y = [Double](repeating: 0, count: n)
        for i in 0..<n {
            var sum = vector[i]
            for k in 0..<i { sum -= l[i * n + k] * y[k] }
            y[i] = sum / l[i * n + i]
        }
        var x = [Double](repeating: 0, count: n)
        for i in stride(from: n - 1, through: 0, by: -1) {
            var sum = y[i]
            for k in (i + 1)..<n { sum -= l[k * n + i] * x[k] }
            x[i] = sum / l[i * n + i]
        }
        return x
    }
}

/// How well probabilities (or any scores) rank and fit the outcomes of a holdout.
package enum ModelMetrics {
    /// Area under the ROC curve (Mann–Whitney U, ties counted half); nil without both classes.
    package static func auc(scores: [Double], labels: [Bool]) -> Double? {
        let positives = labels.filter { $0 }.count
        let negatives = labels.count - positives
        guard positives > 0, negatives > 0 else { return nil }
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var rankSum = 0.0
        var start = 0
        while start < order.count {
            var end = start
            while end + 1 < order.count, scores[order[end + 1]] == scores[order[start]] { end += 1 }
            let rank = Double(start + end) / 2 + 1  // average rank of the tie group
            for position in start...end where labels[order[position]] { rankSum += rank }
            start = end + 1
        }
        let u = rankSum - Double(positives) * Double(positives + 1) / 2
        return u / (Double(positives) * Double(negatives))
    }

    /// Mean negative log-likelihood, probabilities clipped to [1e-15, 1 - 1e-15].
    package static func logLoss(probabilities: [Double], labels: [Bool]) -> Double {
        guard !labels.isEmpty else { return .nan }
        var total = 0.0
        for (p, label) in zip(probabilities, labels) {
            let clipped = min(max(p, 1e-15), 1 - 1e-15)
            total -= label ? log(clipped) : log(1 - clipped)
        }
        return total / Double(labels.count)
    }

    package struct Decile: Sendable, Equatable {
        package var decile: Int
        package var count: Int
        package var meanPredicted: Double
        package var observedRate: Double
    }

    /// Predicted against observed conversion per decile of predicted probability (lowest first).
    package static func calibration(probabilities: [Double], labels: [Bool]) -> [Decile] {
        let order = probabilities.indices.sorted { probabilities[$0] < probabilities[$1] }
        guard !order.isEmpty else { return [] }
        return (0..<10).compactMap { decile in
            let lower = order.count * decile / 10
            let upper = order.count * (decile + 1) / 10
            guard upper > lower else { return nil }
            let slice = order[lower..<upper]
            let predicted = slice.reduce(0) { $0 + probabilities[$1] } / Double(slice.count)
            let observed = Double(slice.filter { labels[$0] }.count) / Double(slice.count)
            return Decile(decile: decile + 1, count: slice.count, meanPredicted: predicted, observedRate: observed)
        }
    }
}
