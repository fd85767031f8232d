@testable import InetCore
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import XCTest

/// A service that answers every datagram with the same bytes.
private struct FixedReplyService: InetService {
    func reply(toDatagram payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        allocator.buffer(string: "pong")
    }
}

/// The events a UDP socket's exchanges are recorded as, and the one that says replies were lost.
final class DatagramEventTests: XCTestCase {
    private func handler(ring: EventRing) -> DatagramServiceHandler {
        let events = HostEvents()
        events.attach(ring: ring, settings: EventSettings())
        let service = FixedReplyService()
        let handler = DatagramServiceHandler(
            service: service, name: "echo", counters: ServiceCounters(service: "echo", transport: .udp),
            limits: LimitsBox(limits: Limits(), service: service),
            limiter: NIOLockedValueBox(SourceRateLimiter(rate: 0, burst: 0, maximumSources: 16)),
            logger: Logger(label: "test"), events: events)
        handler.localPort = 7
        return handler
    }

    private func object(_ event: StoredEvent) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(event.json)) as? [String: Any])
    }

    private func event(_ ring: EventRing, _ id: Int) throws -> StoredEvent {
        guard case .event(let event) = ring.read(id) else {
            XCTFail("no event \(id)")
            throw CancellationError()
        }
        return event
    }

    func testAnExchangeWhoseReplyIsLostIsNamedByALaterEvent() throws {
        let ring = try XCTUnwrap(EventRing.inProcess(slots: 100, slotBytes: 512))
        let handler = handler(ring: ring)
        let peer = try SocketAddress(ipAddress: "127.0.0.1", port: 40000)
        // Through the per-source members the direct socket keeps, and without them: the same.
        for members in [handler.eventMembers(peer: peer), nil] {
            var written: [ByteBuffer] = []
            handler.exchange(ByteBuffer(string: "ping"), from: peer, peerMembers: members, allocator: ByteBufferAllocator(), channel: nil) { reply in
                written.append(reply)
                return true
            }
            XCTAssertEqual(written.map { String(buffer: $0) }, ["pong"])
            let id = handler.lastEventID
            XCTAssertGreaterThan(id, 0)
            let exchange = try object(try event(ring, id))
            XCTAssertEqual(exchange["transport"] as? String, "udp")
            XCTAssertEqual(exchange["peer"] as? String, "127.0.0.1:40000")
            XCTAssertEqual(exchange["port"] as? Int, 7)
            XCTAssertEqual(exchange["outcome"] as? String, "replied")
            XCTAssertEqual(exchange["bytes_out"] as? Int, 4)

            handler.repliesLost(1, bytes: 4, events: [id])
            let lost = try event(ring, ring.lastID)
            XCTAssertEqual(lost.kind, "datagram.replies_lost")
            XCTAssertEqual(lost.service, "echo")
            let body = try object(lost)
            XCTAssertEqual(body["count"] as? Int, 1)
            XCTAssertEqual(body["bytes"] as? Int, 4)
            XCTAssertEqual(body["events"] as? [Int], [id])
            XCTAssertEqual(body["outcome"] as? String, "dropped: send buffer full")
        }
    }

    func testNothingLostIsNotSaid() throws {
        let ring = try XCTUnwrap(EventRing.inProcess(slots: 100, slotBytes: 512))
        let handler = handler(ring: ring)
        XCTAssertTrue(handler.recordsEvents)
        let before = ring.lastID
        handler.repliesLost(0, bytes: 0)
        XCTAssertEqual(ring.lastID, before)
    }
}
