import Foundation
import LeadCore
import Testing

@Suite struct JSONParserTests {
    func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    @Test func parsesEveryKind() throws {
        let value = try parse(#" {"a": [1, -2, 3.5, 1e3, true, false, null], "b": {"c": "d\"\\\/\n\u00e9\ud83d\ude00"}, "e": ""} "#)
        #expect(value["a"] == .array([.int(1), .int(-2), .double(3.5), .double(1000), .bool(true), .bool(false), .null]))
        #expect(value["b"]?["c"] == .string("d\"\\/\né😀"))
        #expect(value["e"] == .string(""))
    }

    @Test(arguments: [
        "", "{", "}", "[1,]", #"{"a":1,}"#, "01", "-", "1.", "1e", "+1", "NaN", "Infinity", "tru", "nul",
        #"{"a" 1}"#, #"{a: 1}"#, "'a'", "\"a", #""\x""#, #""\u12""#, #""\ud800""#, #""\udc00x""#, "[1] [2]", "1e400",
        "\"tab\there\"",
    ])
    func rejectsInvalidJSON(text: String) {
        #expect(throws: JSONParser.Error.self) { try parse(text) }
    }

    @Test func rejectsDuplicateKeys() {
        #expect(throws: JSONParser.Error.self) { try parse(#"{"type": "page_view", "type": "consultation"}"#) }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse([0x22, 0xED, 0xA0, 0x80, 0x22]) }  // encoded surrogate
    }

    @Test func limitsDepth() throws {
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(throws: JSONParser.Error.self) { try parse(deep) }
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        _ = try parse(ok)
    }

    @Test func bigIntegersBecomeDoubles() throws {
        #expect(try parse("9223372036854775807") == .int(Int64.max))
        #expect(try parse("9223372036854775808") == .double(9223372036854775808))
    }

    @Test func writerRoundTrips() throws {
        let value = try parse(#"{"z": [1, 2.25, "x\u0001\"y"], "a": {"k": null, "t": true}}"#)
        let written = JSONWriter.string(value)
        #expect(written == #"{"a":{"k":null,"t":true},"z":[1,2.25,"x\u0001\"y"]}"#)
        #expect(try parse(written) == value)
        // Foundation agrees on what was written.
        #expect(try JSONSerialization.jsonObject(with: Data(written.utf8)) is [String: Any])
    }

    @Test func randomValuesRoundTrip() throws {
        var generator = SystemRandomNumberGenerator()
        func random(_ depth: Int) -> JSONValue {
            switch Int.random(in: 0..<(depth > 3 ? 5 : 7), using: &generator) {
            case 0: return .null
            case 1: return .bool(Bool.random(using: &generator))
            case 2: return .int(Int64.random(in: Int64.min...Int64.max, using: &generator))
            case 3: return .double(Double.random(in: -1e9...1e9, using: &generator))
            case 4: return .string(String((0..<Int.random(in: 0..<12, using: &generator)).map { _ in Character(Unicode.Scalar(UInt8.random(in: 1...126, using: &generator))) }))
            case 5: return .array((0..<Int.random(in: 0..<4, using: &generator)).map { _ in random(depth + 1) })
            default:
                var object: [String: JSONValue] = [:]
                for index in 0..<Int.random(in: 0..<4, using: &generator) { object["k\(index)"] = random(depth + 1) }
                return .object(object)
            }
        }
        for _ in 0..<2000 {
            let value = random(0)
            #expect(try JSONParser.parse(Array(JSONWriter.data(value))) == value)
        }
    }

    @Test(arguments: [
        ("2026-11-26T09:30:00Z", 1_795_685_400.0), ("2026-11-26T09:30:00.250Z", 1_795_685_400.25),
        ("2026-11-26T15:00:00+05:30", 1_795_685_400.0), ("2026-11-26t09:30:00z", 1_795_685_400.0),
    ])
    func timestamps(text: String, seconds: Double) {
        #expect(JSONCoding.parseTimestamp(text)?.timeIntervalSince1970 == seconds)
    }

    @Test(arguments: ["2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-26T09:30:00", "2026-11-26 09:30", "yesterday"])
    func invalidTimestamps(text: String) {
        #expect(JSONCoding.parseTimestamp(text) == nil)
    }

    @Test func timestampFormatRoundTrips() {
        let date = Date(timeIntervalSince1970: 1_795_685_400.123)
        #expect(JSONCoding.formatTimestamp(date) == "2026-11-26T09:30:00.123Z")
        #expect(JSONCoding.parseTimestamp(JSONCoding.formatTimestamp(date)) == Date(timeIntervalSince1970: 1_795_685_400.123))
    }

    @Test(arguments: [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (951_825_599.9996, "2000-02-29T12:00:00.000Z"),  // rounds up into the next second
        (1_798_761_599.999, "2026-12-31T23:59:59.999Z"),
        (-1.5, "1969-12-31T23:59:58.500Z"),
        (253_402_300_799.0, "9999-12-31T23:59:59.000Z"),
    ])
    func timestampsAreFormattedDigitByDigit(seconds: Double, text: String) {
        #expect(JSONCoding.formatTimestamp(Date(timeIntervalSince1970: seconds)) == text)
    }
}
