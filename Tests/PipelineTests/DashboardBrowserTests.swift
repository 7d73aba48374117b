import Foundation
import Testing

/// The dashboard in headless Chromium (Tests/browser/dashboard_test.py, Selenium): sign-in, cookie flags,
/// charts, a live alert arriving over Server-Sent Events, filters, the lead page and an outcome.
@Suite struct DashboardBrowserTests {
    @Test func signInFilterAndWatchALiveAlertInARealBrowser() async throws {
        let stack = try await SharedStack.shared.start()
        let output = TestEnvironment.testDir + "/logs/browser.log"
        FileManager.default.createFile(atPath: output, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", TestEnvironment.repositoryRoot + "/Tests/browser/dashboard_test.py",
            "--admin", stack.admin, "--ingest", stack.ingest, "--screenshot", TestEnvironment.testDir + "/dashboard.png",
        ]
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let status = try await withThrowingTaskGroup(of: Int32?.self) { group in
            group.addTask { try await process.exited() }
            group.addTask {
                try await Task.sleep(for: .seconds(180))
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
        if status == nil { process.terminate() }
        let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(status == 0, "browser test: \(log.suffix(2000))")
    }
}
