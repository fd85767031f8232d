import Foundation
import InetCore
import InetHTTP
import InetSimple
import Logging
import NIOCore
import NIOPosix
import Synchronization
import XCTest

final class HTTPIntegrationTests: XCTestCase {
    private func startHost(root: String) async throws -> InetHost {
        let catalog = SimpleServices.catalog + [HTTPService.descriptor]
        return try await HostHarness.start(catalog: catalog, yaml: "services:\n  http: { root: \(root) }\n", only: ["http", "echo"])
    }

    func testSiteStatusPagesAndClientOverLoopback() async throws {
        let root = NSTemporaryDirectory() + "inetkit-http-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/docs", withIntermediateDirectories: true)
        try "hello\n".write(toFile: root + "/docs/a.txt", atomically: true, encoding: .utf8)
        let host = try await startHost(root: root)
        let base = "http://127.0.0.1:\(host.port(of: "http", transport: .tcp)!)"
        // An echo exchange, so the status page has something to count.
        let echo = await SimpleClient(group: HostHarness.group).exchange(
            SimpleRequest(kind: .echo, transport: .tcp), target: Target(host: "127.0.0.1", port: host.port(of: "echo", transport: .tcp)!))
        XCTAssertTrue(echo.ok)

        let fetcher = HTTPFetcher()
        let results = await fetcher.run(urls: [base + "/docs/a.txt", base + "/docs/", base + "/missing", base + "/_inetkit/status.json"], count: 25, concurrency: 10)
        XCTAssertEqual(results.count, 100)
        let byURL = Dictionary(grouping: results, by: \.url)
        XCTAssertEqual(Set(byURL[base + "/docs/a.txt"]!.map(\.status)), [200])
        XCTAssertEqual(Set(byURL[base + "/docs/a.txt"]!.map(\.bytes)), [6])
        XCTAssertEqual(Set(byURL[base + "/docs/"]!.map(\.status)), [200], "a listing")
        XCTAssertEqual(Set(byURL[base + "/missing"]!.map(\.status)), [404])

        let status = await fetcher.fetchOne(base + "/_inetkit/status.json", sink: .file(root + "/status.json"), progress: nil)
        XCTAssertEqual(status.status, 200)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/status.json"))) as? [String: Any]
        let services = try XCTUnwrap(json?["services"] as? [[String: Any]])
        let echoStatus = try XCTUnwrap(services.first { $0["name"] as? String == "echo" })
        let tcp = try XCTUnwrap((echoStatus["counters"] as? [[String: Any]])?.first { $0["transport"] as? String == "tcp" })
        XCTAssertEqual(tcp["connections"] as? Int, 1)
        let http = try XCTUnwrap(host.counters(of: "http", transport: .tcp))
        XCTAssertGreaterThanOrEqual(http.connections.load(ordering: .relaxed), 10, "keep-alive: about one connection per client slot")
        XCTAssertLessThan(http.connections.load(ordering: .relaxed), 100, "keep-alive reuses connections")
        await host.shutdown(grace: 1)
    }
}
