import Foundation
@testable import InetHTTP
import InetCore
import XCTest

final class StatusPagesTests: XCTestCase {
    private var services: [ServiceStatus] {
        var tcp = ServiceCounters.Snapshot(service: "echo", transport: .tcp, connections: 3, activeConnections: 1, refusedConnections: 0, datagramsIn: 0, datagramsOut: 0, datagramsDropped: 0, bytesIn: 10, bytesOut: 10, errors: 1, distinctPeers: 1)
        var udp = tcp
        udp.transport = .udp
        udp.connections = 0
        udp.datagramsIn = 7
        tcp.service = "echo"
        return [ServiceStatus(name: "echo", enabled: true, listeners: [ListenerStatus(transport: .tcp, address: "127.0.0.1:10007", port: 10007)], counters: [tcp, udp])]
    }

    func testJSONIsValidAndComplete() throws {
        let text = StatusPages.json(services, uptime: 12.7)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        XCTAssertEqual(object["uptime_seconds"] as? Int, 12)
        let service = try XCTUnwrap((object["services"] as? [[String: Any]])?.first)
        XCTAssertEqual(service["name"] as? String, "echo")
        XCTAssertEqual((service["listeners"] as? [[String: Any]])?.first?["port"] as? Int, 10007)
        let counters = try XCTUnwrap(service["counters"] as? [[String: Any]])
        XCTAssertEqual(counters.count, 2)
        XCTAssertEqual(counters[0]["connections"] as? Int, 3)
        XCTAssertEqual(counters[1]["datagrams_in"] as? Int, 7)
    }

    func testMetricsFollowPrometheusTextFormat() {
        let text = StatusPages.metrics(services, uptime: 5)
        XCTAssertTrue(text.contains("# TYPE inetkit_connections_total counter\n"))
        XCTAssertTrue(text.contains("inetkit_connections_total{service=\"echo\",transport=\"tcp\"} 3\n"))
        XCTAssertTrue(text.contains("inetkit_datagrams_received_total{service=\"echo\",transport=\"udp\"} 7\n"))
        XCTAssertTrue(text.contains("inetkit_service_up{service=\"echo\"} 1\n"))
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            XCTAssertNotNil(line.range(of: #"^[a-z_]+(\{[^}]*\})? \d+$"#, options: .regularExpression), String(line))
        }
    }

    func testHTMLListsEveryServiceAndTransport() {
        let html = StatusPages.html(services, uptime: 5, statusPath: "/_inetkit")
        XCTAssertTrue(html.contains("<td>echo</td><td>tcp</td><td>127.0.0.1:10007</td>"))
        XCTAssertTrue(html.contains("<td>echo</td><td>udp</td><td><em>not running</em></td>"))
        XCTAssertTrue(html.contains("href=\"/_inetkit/metrics\""))
    }
}
