import Foundation

/// Reads procedure names out of an interaction's free-form `data`.
package enum ProcedureExtractor {
    /// The lead's `procedure_name`: the first of `selected_procedure`, `procedure`,
    /// `recommendations[0].procedure`, `procedures[0]` (CONTRACT section 7).
    package static func primaryProcedure(in data: [String: JSONValue]) -> String? {
        if let name = nonEmpty(data["selected_procedure"]) { return name }
        if let name = nonEmpty(data["procedure"]) { return name }
        if let first = data["recommendations"]?.arrayValue?.first, let name = procedureName(first) { return name }
        if let first = data["procedures"]?.arrayValue?.first, let name = procedureName(first) { return name }
        return nil
    }

    /// Every distinct procedure the interaction mentions, compared case-insensitively.
    package static func distinctProcedures(in data: [String: JSONValue]) -> Set<String> {
        var names: [String] = []
        for key in ["selected_procedure", "procedure"] {
            if let name = nonEmpty(data[key]) { names.append(name) }
        }
        for key in ["recommendations", "procedures", "selected_procedures"] {
            for item in data[key]?.arrayValue ?? [] {
                if let name = procedureName(item) { names.append(name) }
            }
        }
        return Set(names.map { $0.lowercased() })
    }

    /// A procedure given as a string, or as an object with `procedure` or `name`.
    static func procedureName(_ value: JSONValue) -> String? {
        if let name = nonEmpty(value) { return name }
        return nonEmpty(value["procedure"]) ?? nonEmpty(value["name"])
    }

    static func nonEmpty(_ value: JSONValue?) -> String? {
        guard let text = value?.stringValue?.trimmed, !text.isEmpty else {
            return nil
        }
        return text
    }
}
