#if DEBUG
import InetCore
import NIOCore
@testable import InetSimple

enum SimpleTargets {
    static let services: [any InetService] = [
        EchoService(), DiscardService(), DaytimeService(), QotdService(quotes: ["A quote.", "Another."]), ChargenService(), TimeService(),
    ]

    /// A datagram to each simple service (the first byte picks it); the replies keep their
    /// RFC sizes.
    static let datagram = FuzzTarget(name: "simple-reply", summary: "datagrams to echo, discard, daytime, qotd, chargen and time", maximumLength: 65_507) { bytes in
        var input = FuzzInput(bytes)
        let index = Int(input.byte()) % services.count
        let payload = input.rest()
        let allocator = ByteBufferAllocator()
        let reply = services[index].reply(toDatagram: allocator.buffer(bytes: payload), allocator: allocator)
        switch index {
        case 0: guard reply.map({ Array($0.readableBytesView) }) == payload else { return "echo did not echo" }
        case 1: guard reply == nil else { return "discard replied" }
        case 3: guard let reply, reply.readableBytes <= 512 else { return "qotd over 512 octets" }
        case 4: guard let reply, reply.readableBytes <= 512 else { return "chargen over 512 octets" }
        case 5: guard reply?.readableBytes == 4 else { return "time is not 4 octets" }
        default: break
        }
        return nil
    }
}
#endif
