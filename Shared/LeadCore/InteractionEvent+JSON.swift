import Foundation

/// The wire format of an interaction on `leads.interactions`: snake_case keys, RFC 3339 dates with
/// milliseconds, the event id in lower case. Written and read without Foundation's coders (hot path).
extension InteractionEvent {
    package var jsonValue: JSONValue {
        var object: [String: JSONValue] = [
            "event_id": .string(eventID.uuidString.lowercased()),
            "session_id": .string(sessionID),
            "type": .string(type.rawValue),
            "occurred_at": .string(JSONCoding.formatTimestamp(occurredAt)),
            "received_at": .string(JSONCoding.formatTimestamp(receivedAt)),
            "data": .object(data),
        ]
        if let userID { object["user_id"] = .int(userID) }
        if let sourcePage { object["source_page"] = .string(sourcePage) }
        if let contact {
            var fields: [String: JSONValue] = [:]
            if let name = contact.name { fields["name"] = .string(name) }
            if let phone = contact.phone { fields["phone"] = .string(phone) }
            if let email = contact.email { fields["email"] = .string(email) }
            object["contact"] = .object(fields)
        }
        if let consent {
            object["consent"] = .object(consent.marketing.map { ["marketing": .bool($0)] } ?? [:])
        }
        return .object(object)
    }

    package func encoded() -> Data {
        JSONWriter.data(jsonValue)
    }

    /// Reads an event written by `encoded()` (or any producer following the contract).
    package static func decode(_ data: Data) throws -> InteractionEvent {
        let value: JSONValue
        do {
            value = try JSONParser.parse(data, maxDepth: 128)
        } catch {
            throw ValidationError(code: "malformed_json", error.description, field: nil)
        }
        return try InteractionEvent(json: value)
    }

    package init(json value: JSONValue) throws(ValidationError) {
        guard case .object(let object) = value else {
            throw ValidationError(code: "invalid_event", "an event must be a JSON object", field: nil)
        }
        guard let eventText = object["event_id"]?.stringValue, let eventID = UUID(uuidString: eventText) else {
            throw .invalid("event_id", "event_id must be a UUID")
        }
        guard let sessionID = object["session_id"]?.stringValue, !sessionID.isEmpty else { throw .missing("session_id") }
        guard let typeText = object["type"]?.stringValue, let type = InteractionType(rawValue: typeText) else {
            throw .invalid("type", "unknown type")
        }
        guard let occurredText = object["occurred_at"]?.stringValue, let occurredAt = JSONCoding.parseTimestamp(occurredText) else {
            throw .invalid("occurred_at", "occurred_at must be an RFC 3339 timestamp")
        }
        let receivedAt = object["received_at"]?.stringValue.flatMap(JSONCoding.parseTimestamp) ?? occurredAt
        var contact: Contact?
        if case .object(let fields)? = object["contact"] {
            contact = Contact(name: fields["name"]?.stringValue, phone: fields["phone"]?.stringValue, email: fields["email"]?.stringValue)
        }
        var consent: Consent?
        if case .object(let fields)? = object["consent"] {
            consent = Consent(marketing: fields["marketing"]?.boolValue)
        }
        self.init(
            eventID: eventID,
            sessionID: sessionID,
            userID: object["user_id"]?.int64Value,
            type: type,
            sourcePage: object["source_page"]?.stringValue,
            occurredAt: occurredAt,
            receivedAt: receivedAt,
            contact: contact,
            consent: consent,
            data: object["data"]?.objectValue ?? [:]
        )
    }
}
