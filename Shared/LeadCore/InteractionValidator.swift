import Foundation

/// Turns a decoded JSON body into an `InteractionEvent`, or says which field is wrong (CONTRACT section 3).
package struct InteractionValidator: Sendable {
    package static let maxSessionIDLength = 255
    package static let maxSourcePageLength = 100
    package static let maxDataBytes = 32 * 1024
    package static let maxNameLength = 200
    package static let maxEmailLength = 254
    /// How far in the future `occurred_at` may lie (client clocks drift; beyond this it is a bug).
    package static let maxClockSkew: TimeInterval = 24 * 3600

    package init() {}

    static func containsNUL(_ value: JSONValue) -> Bool {
        switch value {
        case .string(let text): text.utf8.contains(0)
        case .array(let items): items.contains(where: containsNUL)
        case .object(let object): object.contains { $0.key.utf8.contains(0) || containsNUL($0.value) }
        default: false
        }
    }

    package func validate(_ value: JSONValue, receivedAt: Date = Date()) throws(ValidationError) -> InteractionEvent {
        guard case .object(let body) = value else {
            throw ValidationError(code: "invalid_event", "an event must be a JSON object", field: nil)
        }
        // PostgreSQL cannot store U+0000 in text or jsonb: such an event would be accepted, then fail in every
        // worker and end in a dead-letter queue. Refuse it here instead.
        for field in ["session_id", "source_page", "contact", "data"] where body[field].map(Self.containsNUL) == true {
            throw .invalid(field, "must not contain the NUL character (U+0000)")
        }
        let eventID = try uuid(body["event_id"], field: "event_id") ?? UUID.random()
        let sessionID = try sessionID(body["session_id"])
        let type = try type(body["type"])
        let userID = try userID(body["user_id"])
        let sourcePage = try optionalString(body["source_page"], field: "source_page", max: Self.maxSourcePageLength)
        let occurredAt = try occurredAt(body["occurred_at"], receivedAt: receivedAt)
        let contact = try contact(body["contact"])
        let consent = try consent(body["consent"])
        let data = try data(body["data"])
        return InteractionEvent(
            eventID: eventID,
            sessionID: sessionID,
            userID: userID,
            type: type,
            sourcePage: sourcePage,
            occurredAt: occurredAt,
            receivedAt: receivedAt,
            contact: contact,
            consent: consent,
            data: data
        )
    }

    private func uuid(_ value: JSONValue?, field: String) throws(ValidationError) -> UUID? {
        guard let value, !value.isNull else { return nil }
        guard let text = value.stringValue, let uuid = UUID(parsing: text) else {
            throw .invalid(field, "\(field) must be a UUID")
        }
        return uuid
    }

    private func sessionID(_ value: JSONValue?) throws(ValidationError) -> String {
        guard let value, !value.isNull else { throw .missing("session_id") }
        guard let text = value.stringValue else { throw .invalid("session_id", "session_id must be a string") }
        let length = text.unicodeScalars.count
        guard length >= 1, length <= Self.maxSessionIDLength else {
            throw .invalid("session_id", "session_id must be 1 to \(Self.maxSessionIDLength) characters")
        }
        // The control characters (general category Cc) are exactly U+0000-U+001F and U+007F-U+009F.
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) else {
            throw .invalid("session_id", "session_id must not contain control characters")
        }
        return text
    }

    private func type(_ value: JSONValue?) throws(ValidationError) -> InteractionType {
        guard let value, !value.isNull else { throw .missing("type") }
        guard let text = value.stringValue, let type = InteractionType(rawValue: text) else {
            let allowed = InteractionType.allCases.map(\.rawValue).joined(separator: ", ")
            throw .invalid("type", "type must be one of: \(allowed)")
        }
        return type
    }

    private func userID(_ value: JSONValue?) throws(ValidationError) -> Int64? {
        switch value {
        case nil, .null?: return nil
        case .int(let number)? where number > 0: return number
        default: throw .invalid("user_id", "user_id must be a positive integer")
        }
    }

    private func optionalString(_ value: JSONValue?, field: String, max: Int) throws(ValidationError) -> String? {
        guard let value, !value.isNull else { return nil }
        guard let text = value.stringValue else { throw .invalid(field, "\(field) must be a string") }
        guard text.unicodeScalars.count <= max else { throw .invalid(field, "\(field) must be at most \(max) characters") }
        return text
    }

    private func occurredAt(_ value: JSONValue?, receivedAt: Date) throws(ValidationError) -> Date {
        guard let value, !value.isNull else { return receivedAt }
        guard let text = value.stringValue, let date = JSONCoding.parseTimestamp(text) else {
            throw .invalid("occurred_at", "occurred_at must be an RFC 3339 timestamp such as 2026-11-26T09:30:00Z")
        }
        guard date.timeIntervalSince(receivedAt) <= Self.maxClockSkew else {
            throw .invalid("occurred_at", "occurred_at lies more than a day in the future")
        }
        return date
    }

    private func contact(_ value: JSONValue?) throws(ValidationError) -> InteractionEvent.Contact? {
        guard let value, !value.isNull else { return nil }
        guard case .object(let object) = value else { throw .invalid("contact", "contact must be an object") }
        let name = try blankIsNil(optionalString(object["name"], field: "contact.name", max: Self.maxNameLength))
        let email = try blankIsNil(optionalString(object["email"], field: "contact.email", max: Self.maxEmailLength))
        let phone = try blankIsNil(optionalString(object["phone"], field: "contact.phone", max: 40))
        if let email, !ContactNormalizer.looksLikeEmail(email) {
            throw .invalid("contact.email", "contact.email must be an email address")
        }
        if let phone, ContactNormalizer.phoneDigits(phone) == nil {
            throw .invalid(
                "contact.phone",
                "contact.phone must hold 7 to 15 digits (spaces, dashes, dots, brackets and a leading + allowed)"
            )
        }
        let contact = InteractionEvent.Contact(name: name, phone: phone, email: email)
        return contact.isEmpty ? nil : contact
    }

    private func consent(_ value: JSONValue?) throws(ValidationError) -> InteractionEvent.Consent? {
        guard let value, !value.isNull else { return nil }
        guard case .object(let object) = value else { throw .invalid("consent", "consent must be an object") }
        switch object["marketing"] {
        case nil, .null?: return InteractionEvent.Consent(marketing: nil)
        case .bool(let flag)?: return InteractionEvent.Consent(marketing: flag)
        default: throw .invalid("consent.marketing", "consent.marketing must be true or false")
        }
    }

    private func data(_ value: JSONValue?) throws(ValidationError) -> [String: JSONValue] {
        guard let value, !value.isNull else { return [:] }
        guard case .object(let object) = value else { throw .invalid("data", "data must be a JSON object") }
        let size = JSONWriter.data(value).count
        guard size <= Self.maxDataBytes else {
            throw .invalid("data", "data must be at most \(Self.maxDataBytes / 1024) KiB of JSON")
        }
        return object
    }

    private func blankIsNil(_ text: String?) -> String? {
        guard let text else { return nil }
        let trimmed = text.trimmed
        return trimmed.isEmpty ? nil : trimmed
    }
}
