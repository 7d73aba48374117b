import Foundation

/// Charts drawn by the server as inline SVG: no script, no CDN, readable offline and in a CSV-minded
/// sales team's browser. Every label is escaped; sizes scale with the container (`viewBox`).
enum Charts {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    static func number(_ value: Int) -> String {
        let formatter = NumberFormatter()
        formatter.numberStyle = .decimal
        formatter.locale = Locale(identifier: "en_US")
        return formatter.string(from: NSNumber(value: value)) ?? String(value)
    }

    private static func format(_ value: Double) -> String { String(format: "%.1f", value) }

    /// Horizontal bars, one per stage, each group scaled to its own largest value (interactions would
    /// otherwise flatten the lead stages to nothing); the percentage is of the stage above.
    static func funnel(_ groups: [[(label: String, value: Int)]]) -> String {
        let rowHeight = 26.0
        let labelWidth = 110.0
        let barWidth = 330.0
        let rows = groups.reduce(0) { $0 + $1.count } + groups.count - 1
        let height = Double(rows) * rowHeight + 4
        var svg = "<svg viewBox=\"0 0 560 \(format(height))\" width=\"100%\" role=\"img\" aria-label=\"Funnel\">"
        var y = 2.0
        for (groupIndex, group) in groups.enumerated() {
            let maximum = max(group.map(\.value).max() ?? 1, 1)
            var previous: Int?
            for stage in group {
                let width = max(2, barWidth * Double(stage.value) / Double(maximum))
                let share = previous.map { $0 > 0 ? " (\(format(100 * Double(stage.value) / Double($0)))%)" : "" } ?? ""
                svg += "<text x=\"\(format(labelWidth - 8))\" y=\"\(format(y + 16))\" text-anchor=\"end\">\(escape(stage.label))</text>"
                svg += "<rect x=\"\(format(labelWidth))\" y=\"\(format(y + 3))\" width=\"\(format(width))\" height=\"18\" rx=\"3\" fill=\"\(groupIndex == 0 ? "#748ffc" : "#3b5bdb")\"><title>\(escape(stage.label)): \(stage.value)</title></rect>"
                svg += "<text x=\"\(format(labelWidth + width + 6))\" y=\"\(format(y + 16))\">\(number(stage.value))\(share)</text>"
                previous = stage.value
                y += rowHeight
            }
            y += rowHeight
        }
        return svg + "</svg>"
    }

    /// Vertical bars by day (or week, month), with the largest value labelled.
    static func columns(_ points: [(label: String, value: Int)]) -> String {
        guard !points.isEmpty else { return "<p class=\"muted\">No leads in this period.</p>" }
        let width = 560.0
        let height = 170.0
        let plotHeight = 130.0
        let maximum = max(points.map(\.value).max() ?? 1, 1)
        let step = (width - 40) / Double(max(points.count, 14))  // a single day is a bar, not a wall
        var svg = "<svg viewBox=\"0 0 \(format(width)) \(format(height))\" width=\"100%\" role=\"img\" aria-label=\"Leads per period\">"
        svg += "<line x1=\"30\" y1=\"\(format(plotHeight + 10))\" x2=\"\(format(width))\" y2=\"\(format(plotHeight + 10))\" stroke=\"#d0d5dd\"/>"
        svg += "<text x=\"26\" y=\"16\" text-anchor=\"end\">\(maximum)</text><text x=\"26\" y=\"\(format(plotHeight + 10))\" text-anchor=\"end\">0</text>"
        let labelEvery = max(1, points.count / 8)
        for (index, point) in points.enumerated() {
            let barHeight = plotHeight * Double(point.value) / Double(maximum)
            let x = 34 + Double(index) * step
            svg += "<rect x=\"\(format(x))\" y=\"\(format(plotHeight + 10 - barHeight))\" width=\"\(format(max(1, step - 3)))\" height=\"\(format(barHeight))\" fill=\"#3b5bdb\"><title>\(escape(point.label)): \(point.value)</title></rect>"
            if index % labelEvery == 0 {
                svg += "<text x=\"\(format(x))\" y=\"\(format(height - 4))\">\(escape(point.label))</text>"
            }
        }
        return svg + "</svg>"
    }

    /// Weekday × hour grid (ISO weekdays, UTC); darker is busier.
    static func heatmap(_ counts: [[Int]]) -> String {
        let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        let cell = 20.0
        let left = 36.0
        let top = 16.0
        let maximum = max(counts.flatMap { $0 }.max() ?? 1, 1)
        var svg = "<svg viewBox=\"0 0 \(format(left + 24 * cell + 4)) \(format(top + 7 * cell + 4))\" width=\"100%\" role=\"img\" aria-label=\"Interactions by weekday and hour\">"
        for hour in stride(from: 0, to: 24, by: 3) {
            svg += "<text x=\"\(format(left + Double(hour) * cell + 2))\" y=\"11\">\(String(format: "%02d", hour))</text>"
        }
        for (day, row) in counts.enumerated() {
            svg += "<text x=\"\(format(left - 6))\" y=\"\(format(top + Double(day) * cell + 14))\" text-anchor=\"end\">\(days[day])</text>"
            for (hour, count) in row.enumerated() {
                let intensity = count == 0 ? 0 : 0.12 + 0.88 * Double(count) / Double(maximum)
                svg += "<rect x=\"\(format(left + Double(hour) * cell))\" y=\"\(format(top + Double(day) * cell))\" width=\"\(format(cell - 2))\" height=\"\(format(cell - 2))\" rx=\"3\" fill=\"\(count == 0 ? "#f1f3f5" : "#3b5bdb")\" fill-opacity=\"\(count == 0 ? "1" : String(format: "%.2f", intensity))\"><title>\(days[day]) \(String(format: "%02d", hour)):00 UTC: \(count) interactions</title></rect>"
            }
        }
        return svg + "</svg>"
    }

    /// Conversion rate per score band with its 95% interval as a whisker.
    static func bands(_ bands: [(label: String, leads: Int, rate: Double, low: Double, high: Double)]) -> String {
        let width = 560.0
        let plotHeight = 140.0
        let top = 14.0
        let ceiling = max(bands.map(\.high).max() ?? 0.1, 0.05)
        let step = (width - 50) / Double(max(bands.count, 1))
        var svg = "<svg viewBox=\"0 0 \(format(width)) \(format(top + plotHeight + 34))\" width=\"100%\" role=\"img\" aria-label=\"Conversion rate by score band\">"
        svg += "<line x1=\"40\" y1=\"\(format(top + plotHeight))\" x2=\"\(format(width))\" y2=\"\(format(top + plotHeight))\" stroke=\"#d0d5dd\"/>"
        svg += "<text x=\"36\" y=\"\(format(top + 4))\" text-anchor=\"end\">\(Int((ceiling * 100).rounded()))%</text>"
        svg += "<text x=\"36\" y=\"\(format(top + plotHeight))\" text-anchor=\"end\">0%</text>"
        for (index, band) in bands.enumerated() {
            let x = 46 + Double(index) * step
            let barHeight = plotHeight * band.rate / ceiling
            let y = top + plotHeight - barHeight
            svg += "<rect x=\"\(format(x))\" y=\"\(format(y))\" width=\"\(format(step - 14))\" height=\"\(format(barHeight))\" fill=\"#2b8a3e\" fill-opacity=\"0.8\"><title>score \(escape(band.label)): \(format(band.rate * 100))% of \(band.leads) leads converted (95% CI \(format(band.low * 100))–\(format(band.high * 100))%)</title></rect>"
            if band.leads > 0 {
                let middle = x + (step - 14) / 2
                svg += "<line x1=\"\(format(middle))\" x2=\"\(format(middle))\" y1=\"\(format(top + plotHeight - plotHeight * band.high / ceiling))\" y2=\"\(format(top + plotHeight - plotHeight * band.low / ceiling))\" stroke=\"#1d2433\"/>"
                svg += "<text x=\"\(format(middle))\" y=\"\(format(max(top + 10, y - 4)))\" text-anchor=\"middle\">\(format(band.rate * 100))%</text>"
            }
            svg += "<text x=\"\(format(x + (step - 14) / 2))\" y=\"\(format(top + plotHeight + 14))\" text-anchor=\"middle\">\(escape(band.label))</text>"
            svg += "<text x=\"\(format(x + (step - 14) / 2))\" y=\"\(format(top + plotHeight + 28))\" text-anchor=\"middle\">n=\(band.leads)</text>"
        }
        return svg + "</svg>"
    }
}
