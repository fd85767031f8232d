import InetCore
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Time (RFC 868): four bytes, the seconds since 1900-01-01 00:00 UTC as a 32-bit big-endian
/// number (it wraps in 2036, as the RFC's format does), then close.
public struct TimeService: InetService {
    public static let descriptor = ServiceDescriptor(
        name: "time", wellKnownPort: 37, transports: [.tcp, .udp],
        summary: "sends the time as 32-bit seconds since 1900 (RFC 868)"
    ) { options in TimeService(now: { [clock = options.clock] in clock.seconds() }) }

    /// Seconds from 1900-01-01 to 1970-01-01.
    public static let epochOffset = 2_208_988_800

    let now: @Sendable () -> Int

    public init(now: @escaping @Sendable () -> Int = { Int(time(nil)) }) {
        self.now = now
    }

    public func configureTCPConnection(_ channel: any Channel) throws {
        let now = self.now
        try channel.pipeline.syncOperations.addHandler(OneShotHandler(text: false) { allocator in
            Self.encode(secondsSince1970: now(), allocator: allocator)
        })
    }

    public func reply(toDatagram payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        Self.encode(secondsSince1970: now(), allocator: allocator)
    }

    /// The 4 bytes for a moment.
    public static func encode(secondsSince1970: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 4)
        buffer.writeInteger(UInt32(truncatingIfNeeded: secondsSince1970 + epochOffset), endianness: .big)
        return buffer
    }

    /// Seconds since 1970 from the 4 bytes, taking the 2036 wrap into account for dates
    /// near `reference` (RFC 868's era problem).
    public static func decode(_ value: UInt32, near reference: Int) -> Int {
        let era = 1 << 32
        var seconds = Int(value) - epochOffset
        while seconds + era / 2 < reference { seconds += era }
        return seconds
    }
}
