import InetCore
import NIOCore

/// One `exchange` event per TCP connection of a simple service: the first bytes the client sent
/// and the first the server answered, as bounded hex (`events.hex_bytes`), and as text for the
/// services that answer with a line (daytime, qotd). Later bytes only count in the
/// connection's `connection.close`: a stream of echo or chargen is not an event per chunk.
enum SimpleExchange {
    static func record(_ channel: any Channel, sent: ByteBuffer? = nil, answered: ByteBuffer? = nil, answerIsText: Bool = false) {
        guard let events = ConnectionEvents.of(channel) else { return }
        let limit = events.settings.hexBytes
        events.emit("exchange") { body in
            if let sent {
                body.int("bytes_in", sent.readableBytes)
                body.hex("hex_in", sent.readableBytesView, maximum: limit)
            }
            if let answered {
                body.int("bytes_out", answered.readableBytes)
                if answerIsText { body.text("text_out", bytes: answered.readableBytesView.prefix(512)) }
                body.hex("hex_out", answered.readableBytesView, maximum: limit)
            }
        }
    }
}
