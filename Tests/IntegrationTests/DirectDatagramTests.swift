import Foundation
import InetCore
import NIOCore
import NIOPosix
import Synchronization
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A service answering from the datagram alone: its UDP sockets are served by a thread of their
/// own (recvmmsg/sendmmsg), not by a SwiftNIO channel pipeline.
private struct ShoutService: InetService {
    var servesDatagramsDirectly: Bool { true }

    func reply(toDatagram payload: ByteBuffer, from source: SocketAddress, allocator: ByteBufferAllocator) -> ByteBuffer? {
        let text = String(buffer: payload)
        if text == "silence" { return nil }
        if text == "empty" { return allocator.buffer(capacity: 0) }
        return allocator.buffer(string: text.uppercased() + " " + (source.port.map(String.init) ?? "?"))
    }
}

private let shoutCatalog = [
    ServiceDescriptor(name: "shout", wellKnownPort: 7, transports: [.udp], summary: "test") { _ in ShoutService() },
]

/// A UDP client socket on loopback with a receive timeout.
private final class UDPClient {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        self.fd = fd
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8], to port: Int) {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = bytes.withUnsafeBytes { data in
            withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, data.baseAddress, data.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            } }
        }
    }

    /// The next datagram, or nil after the timeout.
    func receive() -> String? {
        var buffer = [UInt8](repeating: 0, count: 2048)
        let count = recv(fd, &buffer, buffer.count, 0)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[..<count], as: UTF8.self)
    }
}

final class DirectDatagramTests: XCTestCase {
    func testADirectServiceAnswersEverySourceAndCountsWhatItDrops() async throws {
        let host = try await HostHarness.start(catalog: shoutCatalog, yaml: "limits: { udp_rate: 0, max_datagram: 512 }\n", only: ["shout"])
        let port = try XCTUnwrap(host.port(of: "shout", transport: .udp))
        let first = try UDPClient()
        let second = try UDPClient()
        // A burst from two sources: each reply goes back to the source that asked.
        for index in 0..<100 {
            first.send(Array("a\(index)".utf8), to: port)
            second.send(Array("b\(index)".utf8), to: port)
        }
        var fromFirst = Set<String>()
        var fromSecond = Set<String>()
        for _ in 0..<100 {
            fromFirst.insert(try XCTUnwrap(first.receive()))
            fromSecond.insert(try XCTUnwrap(second.receive()))
        }
        XCTAssertEqual(fromFirst, Set((0..<100).map { "A\($0) \(first.port)" }))
        XCTAssertEqual(fromSecond, Set((0..<100).map { "B\($0) \(second.port)" }))

        // An empty reply is a datagram too.
        first.send(Array("empty".utf8), to: port)
        XCTAssertEqual(first.receive(), "")

        // Longer than max_datagram: dropped and counted, never cut and answered; the socket goes on.
        first.send([UInt8](repeating: 0x61, count: 600), to: port)
        first.send(Array("silence".utf8), to: port)
        first.send(Array([UInt8](repeating: 0x62, count: 512)), to: port)
        XCTAssertEqual(first.receive(), String(repeating: "B", count: 512) + " \(first.port)")
        // One thread per socket (one per event loop), named for top -H and perf.
        let names = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").compactMap {
            try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        XCTAssertEqual(names.filter { $0 == "shout-udp" }.count, System.coreCount)
        let counters = try XCTUnwrap(host.counters(of: "shout", transport: .udp))
        XCTAssertEqual(counters.datagramsIn.load(ordering: .relaxed), 204)
        XCTAssertEqual(counters.datagramsOut.load(ordering: .relaxed), 202)
        XCTAssertEqual(counters.datagramsDropped.load(ordering: .relaxed), 1)

        // Closing the listener stops the thread, which closes its descriptor: the port is then
        // free for a socket without SO_REUSEPORT.
        await host.shutdown(grace: 1, summary: false)
        var rebound = false
        for _ in 0..<100 where !rebound {
            let probe = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port)).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            rebound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 } }
            close(probe)
            if !rebound { try await Task.sleep(nanoseconds: 20_000_000) }
        }
        XCTAssertTrue(rebound, "the direct socket's thread closed its descriptor")
    }
}
