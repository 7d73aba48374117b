import AMQP
import Foundation
import LeadStore
import Testing

@Suite struct InfrastructureTests {
    @Test func sqlScriptSplitsOnTopLevelSemicolons() {
        let script = """
            -- a comment; with a semicolon
            CREATE TABLE a (x TEXT DEFAULT 'it''s; fine');
            CREATE FUNCTION f() RETURNS INT LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;
            /* block; comment */ SELECT "odd;name" FROM a;
            CREATE FUNCTION g() RETURNS TEXT LANGUAGE sql AS $body$ SELECT ';' $body$;
            SELECT $1
            """
        let statements = SQLScript.statements(script)
        #expect(statements.count == 5)
        #expect(statements[1].hasSuffix("END $$"))
        #expect(statements[3].hasSuffix("$body$"))
        #expect(statements[4] == "SELECT $1")
    }

    @Test func everyMigrationFileIsEmbedded() throws {
        let folder = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Shared/LeadStore/Migrations")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".sql") }
        let versions = files.compactMap { Int($0.prefix { $0.isNumber }) }.sorted()
        #expect(Migrator.all.map(\.version) == versions)
        #expect(Set(versions).count == versions.count)
    }

    @Test func amqpURLParsing() throws {
        let configuration = try AMQPConfiguration(url: "amqp://guest:secret@127.0.0.1:5673/%2F, amqp://u:p@host2/vh")
        #expect(configuration.endpoints.count == 2)
        #expect(configuration.endpoints[0].port == 5673)
        #expect(configuration.endpoints[0].vhost == "/")
        #expect(configuration.endpoints[1].port == 5672)
        #expect(configuration.endpoints[1].vhost == "vh")
        #expect(!configuration.description.contains("secret"))
        #expect(throws: AMQPError.self) { try AMQPConfiguration(url: "http://x") }
    }

    @Test func databaseURLParsing() throws {
        let configuration = try DatabaseConfiguration(url: "postgres://leads:p%40ss@db.local:6543/leads")
        #expect(configuration.password == "p@ss")
        #expect(configuration.port == 6543)
        #expect(!configuration.description.contains("p@ss"))
    }
}
