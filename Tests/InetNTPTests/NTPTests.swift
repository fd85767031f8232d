import InetCore
import NIOCore
import XCTest

@testable import InetNTP

final class NTPTests: XCTestCase {
    let synced = HostClock.KernelState(synchronized: true, leap: .none, estimatedError: 0.000_5, maximumError: 0.01)
    let unsynced = HostClock.KernelState(synchronized: false, leap: .none, estimatedError: 16, maximumError: 16)

    func testTimestampsAcrossTheEraBoundary() {
        // 2036-02-07 06:28:16 UTC is where era 0 ends: NTP seconds wrap to 0.
        let wrap: Int64 = 2_085_978_496
        XCTAssertEqual(NTPTimestamp(unixSeconds: wrap - 1, nanoseconds: 0).seconds, UInt32.max)
        XCTAssertEqual(NTPTimestamp(unixSeconds: wrap, nanoseconds: 0).seconds, 0)
        XCTAssertEqual(NTPTimestamp(unixSeconds: wrap + 10, nanoseconds: 500_000_000).unixTime(near: Double(wrap)), Double(wrap) + 10.5, accuracy: 1e-6)
        XCTAssertEqual(NTPTimestamp(unixSeconds: 1_796_300_000, nanoseconds: 0).unixTime(near: 1_796_300_000), 1_796_300_000, accuracy: 1e-6)
        XCTAssertEqual(NTPTimestamp(unixSeconds: 0, nanoseconds: 0).seconds, UInt32(NTPTimestamp.unixEpoch))
        // Nanoseconds map onto the fraction: half a second is 2^31.
        XCTAssertEqual(NTPTimestamp(unixSeconds: 0, nanoseconds: 500_000_000).fraction, 1 << 31)
        XCTAssertEqual(NTPTimestamp(unixTime: .infinity), .zero)
    }

    func testPacketRoundTrip() throws {
        let packet = NTPPacket(leap: .insertSecond, version: 3, mode: .server, stratum: 2, poll: 6, precision: -20,
                               rootDelay: 0x0001_8000, rootDispersion: 42, referenceID: 0xC000_0201,
                               referenceTime: NTPTimestamp(seconds: 1, fraction: 2), originTime: NTPTimestamp(seconds: 3, fraction: 4),
                               receiveTime: NTPTimestamp(seconds: 5, fraction: 6), transmitTime: NTPTimestamp(seconds: 7, fraction: 8))
        let bytes = packet.encode()
        XCTAssertEqual(bytes.count, 48)
        XCTAssertEqual(bytes[0], 0b01_011_100)
        XCTAssertEqual(NTPPacket.decode(bytes), packet)
        XCTAssertEqual(NTPPacket.decode(bytes + [1, 2, 3, 4]), packet, "extension fields and MAC are ignored")
        XCTAssertNil(NTPPacket.decode(bytes.prefix(47)))
        XCTAssertEqual(packet.referenceText, "192.0.2.1")
        XCTAssertEqual(NTPPacket(mode: .server, stratum: 1, referenceID: NTPPacket.referenceID(code: "GPS")!).referenceText, "GPS")
    }

    func request(version: UInt8 = 4, mode: NTPPacket.Mode = .client) -> NTPPacket {
        NTPPacket(version: version, mode: mode, poll: 10, transmitTime: NTPTimestamp(seconds: 0xdead_beef, fraction: 0x1234_5678))
    }

    func testAnswerCopiesVersionPollAndOrigin() {
        let responder = NTPResponder(stratum: 2, referenceID: 0x7f7f_0101)
        let received = NTPTimestamp(seconds: 1000, fraction: 1)
        let sent = NTPTimestamp(seconds: 1000, fraction: 9)
        for version: UInt8 in 1...4 {
            let reply = responder.answer(to: request(version: version), received: received, transmitted: sent, clock: synced)
            XCTAssertEqual(reply.version, version)
            XCTAssertEqual(reply.mode, .server)
            XCTAssertEqual(reply.poll, 10)
            XCTAssertEqual(reply.originTime, NTPTimestamp(seconds: 0xdead_beef, fraction: 0x1234_5678))
            XCTAssertEqual(reply.receiveTime, received)
            XCTAssertEqual(reply.transmitTime, sent)
            XCTAssertEqual(reply.leap, .none)
            XCTAssertEqual(reply.stratum, 2)
            XCTAssertEqual(reply.referenceID, 0x7f7f_0101)
            XCTAssertLessThanOrEqual(reply.referenceTime.seconds, received.seconds)
        }
    }

    func testUnsynchronisedClockSaysLeap3() {
        let reply = NTPResponder().answer(to: request(), received: .zero, transmitted: .zero, clock: unsynced)
        XCTAssertEqual(reply.leap, .unsynchronized)
        XCTAssertEqual(reply.stratum, 16)
        let vouched = NTPResponder(synchronization: .always).answer(to: request(), received: .zero, transmitted: .zero, clock: unsynced)
        XCTAssertEqual(vouched.leap, .none)
        XCTAssertEqual(vouched.stratum, 1)
        XCTAssertLessThan(NTPShortFormat.decode(vouched.rootDispersion), 0.01)
        let never = NTPResponder(synchronization: .never).answer(to: request(), received: .zero, transmitted: .zero, clock: synced)
        XCTAssertEqual(never.leap, .unsynchronized)
        let leap = NTPResponder().answer(to: request(), received: .zero, transmitted: .zero,
                                         clock: HostClock.KernelState(synchronized: true, leap: .insert, estimatedError: 0, maximumError: 0))
        XCTAssertEqual(leap.leap, .insertSecond)
    }

    func testKissOfDeath() {
        let kiss = NTPResponder().answer(to: request(), received: .zero, transmitted: .zero, clock: synced, kiss: true)
        XCTAssertEqual(kiss.stratum, 0)
        XCTAssertEqual(kiss.referenceText, "RATE")
        XCTAssertEqual(kiss.leap, .unsynchronized)
        XCTAssertEqual(kiss.originTime, request().transmitTime)
    }

    func testWhatIsNeverAnswered() {
        func verdict(_ bytes: [UInt8]) -> NTPResponder.Refusal? {
            if case .failure(let refusal) = NTPResponder.request(in: bytes) { return refusal }
            return nil
        }
        XCTAssertEqual(verdict([]), .short(0))
        XCTAssertEqual(verdict(request().encode().dropLast(1).map { $0 }), .short(47))
        // ntpq (mode 6) and ntpdc's monlist (mode 7), even padded to look like a header.
        XCTAssertEqual(verdict(request(mode: .control).encode()), .controlMode(6))
        XCTAssertEqual(verdict([0x17, 0x00, 0x03, 0x2a] + [UInt8](repeating: 0, count: 44)), .controlMode(7))
        XCTAssertEqual(verdict(request(mode: .server).encode()), .notAClient(4))
        XCTAssertEqual(verdict(request(mode: .symmetricActive).encode()), .notAClient(1))
        XCTAssertEqual(verdict(request(version: 0).encode()), .version(0))
        XCTAssertEqual(verdict(request(version: 5).encode()), .version(5))
        XCTAssertNil(verdict(request().encode()))
    }

    func testServiceRepliesNoLargerThanTheRequestWithTheHostClock() throws {
        let service = NTPService(clock: HostClock(offset: 86_400), kernelState: { [synced] in synced })
        let allocator = ByteBufferAllocator()
        let before = Double(time(nil)) + 86_400
        let reply = try XCTUnwrap(service.reply(toDatagram: allocator.buffer(bytes: request().encode() + [UInt8](repeating: 0, count: 20)), allocator: allocator))
        XCTAssertEqual(reply.readableBytes, 48)
        let packet = try XCTUnwrap(NTPPacket.decode(Array(reply.readableBytesView)))
        let told = packet.transmitTime.unixTime(near: before)
        XCTAssertEqual(told, before, accuracy: 2, "clock_offset moves the time NTP tells")
        XCTAssertLessThanOrEqual(packet.receiveTime.raw, packet.transmitTime.raw)
        XCTAssertNil(service.reply(toDatagram: allocator.buffer(bytes: request(mode: .control).encode()), allocator: allocator))
    }

    func testKissesAreBounded() throws {
        let service = NTPService(kissRate: 5, kernelState: { [synced] in synced })
        let allocator = ByteBufferAllocator()
        let peer = try SocketAddress(ipAddress: "192.0.2.1", port: 123)
        var kisses = 0
        for _ in 0..<100 {
            if let kiss = service.replyWhenRateLimited(toDatagram: allocator.buffer(bytes: request().encode()), from: peer, first: false, allocator: allocator) {
                XCTAssertEqual(NTPPacket.decode(Array(kiss.readableBytesView))?.referenceText, "RATE")
                kisses += 1
            }
        }
        XCTAssertEqual(kisses, 5)
        let silent = NTPService(kissRate: 0, kernelState: { [synced] in synced })
        XCTAssertNil(silent.replyWhenRateLimited(toDatagram: allocator.buffer(bytes: request().encode()), from: peer, first: true, allocator: allocator))
    }

    func testClientMeasuresOffsetAndDelay() throws {
        // The server is 10 s ahead; 40 ms each way; 2 ms inside the server.
        let t1 = 1_796_300_000.0
        let request = NTPClient.request(now: t1)
        let reply = NTPPacket(version: 4, mode: .server, stratum: 1, originTime: request.transmitTime,
                              receiveTime: NTPTimestamp(unixTime: t1 + 10.040), transmitTime: NTPTimestamp(unixTime: t1 + 10.042))
        let m = try NTPClient.measure(reply: reply.encode(), request: request, sent: t1, received: t1 + 0.082)
        XCTAssertEqual(m.offset, 10, accuracy: 1e-4)
        XCTAssertEqual(m.delay, 0.080, accuracy: 1e-4)
        var forged = reply
        forged.originTime = NTPTimestamp(raw: request.transmitTime.raw &+ 1)
        XCTAssertThrowsError(try NTPClient.measure(reply: forged.encode(), request: request, sent: t1, received: t1 + 0.08))
        XCTAssertEqual(NTPClient.utc(0), "1970-01-01 00:00:00.000000 UTC")
    }

    func testConfig() throws {
        func make(_ yaml: String) throws -> NTPService {
            let config = try HostConfig.parse(yaml: "services:\n  ntp: \(yaml)\n", file: "t.yaml", catalog: [NTPService.descriptor])
            return try NTPService(ServiceOptions(reader: config.services["ntp"], dataDirectory: "/tmp", configDirectory: ""))
        }
        XCTAssertEqual(try make("{ stratum: 3, reference_id: 192.0.2.7 }").responder.referenceID, 0xC000_0207)
        XCTAssertEqual(try make("{ stratum: 2 }").responder.referenceID, 0x7f7f_0101)
        XCTAssertEqual(try make("{ reference_id: GPS, synchronized: true }").responder.synchronization, .always)
        XCTAssertThrowsError(try make("{ stratum: 16 }"))
        XCTAssertThrowsError(try make("{ reference_id: TOOLONG }"))
        XCTAssertThrowsError(try make("{ stratum: 2, reference_id: GPS }"))
        XCTAssertThrowsError(try make("{ synchronized: maybe }"))
        let offset = try HostConfig.parse(yaml: "clock_offset: -1d\n", file: "t.yaml", catalog: [])
        XCTAssertEqual(offset.clock.offset, -86_400)
        XCTAssertThrowsError(try HostConfig.parse(yaml: "clock_offset: 1e12\n", file: "t.yaml", catalog: []))
    }
}
