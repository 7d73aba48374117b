import Foundation

/// Collects results: each printed at once as a JSON line, appended to the output file, and summed up in a
/// table at the end.
final class Report: @unchecked Sendable {
    private let path: String
    private var rows: [(String, String)] = []
    private var values: [String: [String: Any]] = [:]
    private var handle: FileHandle

    init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true
        )
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    }

    /// Records one result. `figures` values are numbers or strings.
    func emit(_ bench: String, _ figures: [String: Any], summary: String) {
        var object = figures
        object["bench"] = bench
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        let line = String(decoding: data, as: UTF8.self)
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
        handle.write(Data((line + "\n").utf8))
        rows.append((bench, summary))
        values[bench] = figures
    }

    /// A number emitted earlier, for ratios between benches.
    func value(_ bench: String, _ key: String) -> Double? {
        (values[bench]?[key] as? Double) ?? (values[bench]?[key] as? Int).map(Double.init)
    }

    func printTable() {
        let width = (rows.map(\.0.count).max() ?? 10) + 2
        print("\n" + String(repeating: "-", count: 100))
        for (bench, summary) in rows {
            print(bench.padding(toLength: width, withPad: " ", startingAt: 0) + summary)
        }
        print(String(repeating: "-", count: 100))
        print("results: \(path)")
    }
}

func rounded(_ value: Double, _ places: Int = 3) -> Double {
    let factor = pow(10, Double(places))
    return (value * factor).rounded() / factor
}
