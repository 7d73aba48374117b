/// Why an event was refused: the contract's `{"error": {"code", "message", "field"}}`.
package struct ValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    package var code: String
    package var message: String
    package var field: String?

    package init(code: String = "invalid_field", _ message: String, field: String?) {
        self.code = code
        self.message = message
        self.field = field
    }

    package static func missing(_ field: String) -> ValidationError {
        ValidationError(code: "missing_field", "\(field) is required", field: field)
    }

    package static func invalid(_ field: String, _ message: String) -> ValidationError {
        ValidationError(code: "invalid_field", message, field: field)
    }

    package var description: String { "\(field ?? "event"): \(message)" }
}
