import CInetSupport
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Serves one UDP socket of a service that answers from the datagram alone (DNS, SNMP, NTP) on a
/// thread of its own: up to 16 datagrams per recvmmsg, their replies sent with one sendmmsg,
/// each datagram handled by the same `DatagramServiceHandler` logic as on an event loop (rate
/// limits, counters, events, log lines, reloads). What SwiftNIO's channel pipeline cost per
/// datagram (an envelope, a boxed address printed with inet_ntop, the pipeline's calls, a
/// pending-write queue) was a quarter of a DNS query's CPU.
///
/// The socket's `Channel` is still made (never read: auto-read off) so the host lists, spreads
/// and closes it like any other; closing it stops this thread, which then closes its own
/// descriptor of the socket. Replies are never queued: a full send buffer drops them (counted).
final class DirectDatagramSocket: @unchecked Sendable {
    static let batch = 16
    fileprivate static let addressOffset = MemoryLayout<inetkit_datagram>.offset(of: \inetkit_datagram.address)!

    private let descriptor: Int32
    private let wake: Int32
    private let handler: DatagramServiceHandler
    private let maxDatagram: Int
    private let cpu: Int32?
    private let threadName: String
    /// Whether the descriptors are still open (stop and the thread's end agree under the lock).
    private let open = NIOLockedValueBox(true)
    private let stopping = NIOLockedValueBox(false)

    /// Starts serving `descriptor` (a descriptor of its own, which it closes when it stops), on a
    /// thread held on `cpu` if given (`pin_event_loops`).
    /// The thread is named `SERVICE-udp` (cut to the 15 bytes Linux keeps), as `top -H` shows it.
    static func start(descriptor: Int32, handler: DatagramServiceHandler, maxDatagram: Int, cpu: Int32? = nil, name: String = "udp") throws -> DirectDatagramSocket {
        let wake = inetkit_wake_descriptor()
        guard wake >= 0 else {
            let code = errno
            close(descriptor)
            throw IOError(errnoCode: code, reason: "eventfd")
        }
        let socket = DirectDatagramSocket(descriptor: descriptor, wake: wake, handler: handler, maxDatagram: maxDatagram, cpu: cpu,
                                          threadName: "\(name)-udp")
        let box = Unmanaged.passRetained(socket).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { argument in
            let socket = Unmanaged<DirectDatagramSocket>.fromOpaque(argument!).takeRetainedValue()
            socket.run()
            return nil
        }, box)
        guard created == 0 else {
            Unmanaged<DirectDatagramSocket>.fromOpaque(box).release()
            socket.closeDescriptors()
            throw IOError(errnoCode: created, reason: "pthread_create")
        }
        pthread_detach(thread)
        return socket
    }

    private init(descriptor: Int32, wake: Int32, handler: DatagramServiceHandler, maxDatagram: Int, cpu: Int32?, threadName: String) {
        self.cpu = cpu
        self.threadName = threadName
        self.descriptor = descriptor
        self.wake = wake
        self.handler = handler
        self.maxDatagram = maxDatagram
    }

    /// Ends the thread (soon; it finishes the batch in hand).
    func stop() {
        stopping.withLockedValue { $0 = true }
        open.withLockedValue { if $0 { inetkit_wake(wake) } }
    }

    private func closeDescriptors() {
        open.withLockedValue {
            guard $0 else { return }
            $0 = false
            close(descriptor)
            close(wake)
        }
    }

    private func run() {
        inetkit_name_thread(threadName)
        // (Best effort, as for the event loops.)
        if let cpu { _ = inetkit_pin_thread_to_cpu(cpu) }
        let count = Self.batch
        let slot = maxDatagram + 1  // one byte more: a datagram longer than max_datagram shows as cut
        let area = UnsafeMutableRawPointer.allocate(byteCount: slot * count, alignment: 16)
        let datagrams = UnsafeMutablePointer<inetkit_datagram>.allocate(capacity: count)
        datagrams.initialize(repeating: inetkit_datagram(), count: count)
        let replies = UnsafeMutablePointer<inetkit_reply>.allocate(capacity: count)
        replies.initialize(repeating: inetkit_reply(), count: count)
        // The event id of each reply's exchange (0: none), named if its reply is lost.
        var replyEvents = [Int](repeating: 0, count: count)
        // Each reply is copied here (one UDP payload's room per datagram of the batch).
        let replyRoom = 65_536
        let outgoing = UnsafeMutableRawPointer.allocate(byteCount: replyRoom * count, alignment: 16)
        var addresses = AddressCache()
        let allocator = ByteBufferAllocator()
        defer {
            handler.batchEnded()
            area.deallocate()
            datagrams.deallocate()
            replies.deallocate()
            outgoing.deallocate()
            closeDescriptors()
        }
        while !stopping.withLockedValue({ $0 }) {
            let received = inetkit_receive_datagrams(descriptor, datagrams, area.assumingMemoryBound(to: UInt8.self), UInt32(slot), UInt32(count))
            if received < 0 {
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN || code == EWOULDBLOCK {
                    let ready = inetkit_wait_readable(descriptor, wake)
                    if ready < 0 {
                        // (poll fails only for want of memory; the socket stops being read, said loudly.)
                        handler.socketError(IOError(errnoCode: errno, reason: "poll"), stopped: true)
                        return
                    }
                    if ready == 0 { return }
                    continue
                }
                let fatal = code == EBADF || code == ENOTSOCK
                handler.socketError(IOError(errnoCode: code, reason: "recvmmsg"), stopped: fatal)
                if fatal { return }
                continue
            }
            var pendingReplies = 0
            for index in 0..<Int(received) {
                let datagram = datagrams[index]
                let length = Int(datagram.length)
                let known = addresses.address(datagrams + index)
                if datagram.truncated != 0 || length > maxDatagram {
                    handler.droppedUnread(length, from: known?.address)
                    continue
                }
                guard let known else { continue }
                let source = known.address
                let peerMembers = handler.recordsEvents ? addresses.eventMembers(known.slot) { handler.eventMembers(peer: source) } : nil
                let payload = allocator.buffer(bytes: UnsafeRawBufferPointer(start: area + index * slot, count: length))
                handler.exchange(payload, from: source, peerMembers: peerMembers, allocator: allocator, channel: nil) { reply in
                    let size = reply.readableBytes
                    guard size <= replyRoom else { return false }
                    let room = outgoing + pendingReplies * replyRoom
                    if size > 0 { reply.withUnsafeReadableBytes { room.copyMemory(from: $0.baseAddress!, byteCount: size) } }
                    let address = UnsafeRawPointer(datagrams + index) + Self.addressOffset
                    replyEvents[pendingReplies] = handler.lastEventID
                    replies[pendingReplies] = inetkit_reply(address: address, address_length: datagram.address_length,
                                                            data: UnsafeRawPointer(room), length: UInt(size), sent: 0)
                    pendingReplies += 1
                    return true
                }
            }
            // The counts are out before the replies (a client that has its answer sees it counted).
            handler.batchEnded()
            if pendingReplies > 0 {
                let sent = Int(inetkit_send_datagrams(descriptor, replies, UInt32(pendingReplies)))
                if sent < pendingReplies {
                    var lostBytes = 0
                    var lostEvents: [Int] = []
                    for index in 0..<pendingReplies where replies[index].sent == 0 {
                        lostBytes += Int(replies[index].length)
                        lostEvents.append(replyEvents[index])
                    }
                    handler.repliesLost(pendingReplies - sent, bytes: lostBytes, events: lostEvents)
                    handler.batchEnded()
                }
            }
        }
    }

    /// The `SocketAddress` of each recent source, so a source that keeps asking (a resolver, a
    /// monitoring station) costs no allocation and no inet_ntop per datagram, and the start of
    /// its events is encoded once: 64 entries, direct-mapped by address and port.
    struct AddressCache {
        private var keys = [sockaddr_storage](repeating: sockaddr_storage(), count: 64)
        private var lengths = [UInt32](repeating: 0, count: 64)
        private var values = [SocketAddress?](repeating: nil, count: 64)
        private var members = [EventMembers?](repeating: nil, count: 64)

        /// The event members of the source in `slot` (what `address` returned), made by `make`
        /// the first time.
        mutating func eventMembers(_ slot: Int, make: () -> EventMembers) -> EventMembers {
            if let known = members[slot] { return known }
            let made = make()
            members[slot] = made
            return made
        }

        mutating func address(_ datagram: UnsafeMutablePointer<inetkit_datagram>) -> (address: SocketAddress, slot: Int)? {
            let length = Int(datagram.pointee.address_length)
            let raw = UnsafeRawBufferPointer(start: UnsafeRawPointer(datagram) + DirectDatagramSocket.addressOffset, count: MemoryLayout<sockaddr_storage>.size)
            let family = Int32(raw.load(as: sa_family_t.self))
            let size: Int
            switch family {
            case AF_INET: size = MemoryLayout<sockaddr_in>.size
            case AF_INET6: size = MemoryLayout<sockaddr_in6>.size
            default: return nil
            }
            guard length >= size else { return nil }
            var hash: UInt64 = 0
            var offset = 0
            while offset + 4 <= size {
                hash = (hash ^ UInt64(raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self))) &* 0x9E37_79B9_7F4A_7C15
                offset += 4
            }
            let slot = Int(truncatingIfNeeded: hash >> 58)
            let hit = lengths[slot] == UInt32(size) && keys.withUnsafeBytes { stored in
                memcmp(stored.baseAddress! + slot * MemoryLayout<sockaddr_storage>.stride, raw.baseAddress!, size) == 0
            }
            if hit, let known = values[slot] { return (known, slot) }
            let address = family == AF_INET
                ? SocketAddress(raw.loadUnaligned(as: sockaddr_in.self))
                : SocketAddress(raw.loadUnaligned(as: sockaddr_in6.self))
            keys[slot] = raw.loadUnaligned(as: sockaddr_storage.self)
            lengths[slot] = UInt32(size)
            values[slot] = address
            members[slot] = nil
            return (address, slot)
        }
    }
}
