import Foundation
import HTTPTypes
import LeadCore
import LeadService
import Testing

@Suite struct SmallHelpersTests {
    @Test func randomUUIDsAreVersion4AndDistinct() {
        var seen = Set<UUID>()
        // More than one 4 KiB pool (256 UUIDs), so refills are covered too.
        for _ in 0..<2_000 {
            let id = UUID.random()
            let bytes = id.uuid
            #expect(bytes.6 >> 4 == 4, "version nibble of \(id)")
            #expect(bytes.8 >> 6 == 0b10, "variant bits of \(id)")
            #expect(id.uuidString.dropFirst(14).first == "4")
            seen.insert(id)
        }
        #expect(seen.count == 2_000)
    }

    @Test func lowercasedStringIsFoundationsTextInLowerCase() {
        let fixed = UUID(uuidString: "0A1B2C3D-4E5F-4A6B-8C7D-9E0FA1B2C3D4")!
        #expect(fixed.lowercasedString == "0a1b2c3d-4e5f-4a6b-8c7d-9e0fa1b2c3d4")
        for id in [UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)), UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255))]
            + (0..<500).map({ _ in UUID.random() })
        {
            #expect(id.lowercasedString == id.uuidString.lowercased())
            #expect(UUID(uuidString: id.lowercasedString) == id)
        }
    }

    /// `UUID(parsing:)` reads the canonical form in any case as Foundation's `UUID(uuidString:)` does, and refuses
    /// anything else. Foundation (sscanf on Linux) accepts 50 of this test's 331 malformed texts and reads another
    /// id from them ("-a1b2c3d-..." as f61b2c3d-..., a space for the first digit as a1b2c30d-...).
    @Test func parsingReadsTheCanonicalFormOnly() {
        let ids = [UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)),
                   UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255))]
            + (0..<500).map { _ in UUID.random() }
        for id in ids {
            let lower = id.lowercasedString
            let mixed = String(lower.enumerated().map { $0.offset % 3 == 0 ? Character($0.element.uppercased()) : $0.element })
            for text in [lower, id.uuidString, mixed] {
                #expect(UUID(parsing: text) == id, "\(text)")
            }
        }
        let valid = "0a1b2c3d-4e5f-4a6b-8c7d-9e0fa1b2c3d4"
        var malformed = ["", "0", String(valid.dropLast()), valid + "0", "{\(valid)}", " " + valid, valid.replacingOccurrences(of: "-", with: ""),
                         "0a1b2c3d4e5f-4a6b-8c7d-9e0fa1b2c3d4-", "0a1b2c3g-4e5f-4a6b-8c7d-9e0fa1b2c3d4", "0a1b2c3d-4e5f-4a6b-8c7d-9e0fa1b2c3d\u{0}",
                         "0a1b2c3d-4e5f-4a6b-8c7d-9e0fa1b2c3dé", "0a1b2c3d_4e5f_4a6b_8c7d_9e0fa1b2c3d4", "+a1b2c3d-4e5f-4a6b-8c7d-9e0fa1b2c3d4"]
        // Every single character of a valid id replaced by each of some neighbours of the hex digits.
        for offset in 0..<36 {
            for replacement in ["-", "g", "G", "/", ":", "@", "`", " ", "x"] {
                var characters = Array(valid)
                guard characters[offset] != Character(replacement) else { continue }
                characters[offset] = Character(replacement)
                malformed.append(String(characters))
            }
        }
        for text in malformed {
            #expect(UUID(parsing: text) == nil, "\(text.debugDescription)")
        }
    }

    @Test func onOffSettingsAreReadStrictly() throws {
        let reader = EnvironmentReader(["A": "on", "B": "off", "C": " ", "D": "yes"])
        #expect(try reader.onOff("A", default: false) == true)
        #expect(try reader.onOff("B", default: true) == false)
        #expect(try reader.onOff("C", default: true) == true, "blank is unset")
        #expect(try reader.onOff("unset", default: false) == false)
        #expect(throws: ConfigurationError.self) { try reader.onOff("D", default: false) }
    }

    @Test func headerValueMatchesTheSubscript() {
        var fields = HTTPFields()
        #expect(fields.value(.authorization) == nil)
        fields[.authorization] = "Bearer one"
        #expect(fields.value(.authorization) == "Bearer one")
        fields.append(HTTPField(name: .authorization, value: "Bearer two"))
        // Twice: the same joined value as `fields[name]`, never just the first.
        #expect(fields.value(.authorization) == fields[.authorization])
        #expect(fields.value(.authorization) == "Bearer one, Bearer two")
        fields[.apiKey] = "k"
        #expect(fields.value(HTTPField.Name("x-api-key")!) == "k")
    }
}
