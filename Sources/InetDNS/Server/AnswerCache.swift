import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Encoded answers kept for reuse: an authoritative server answers the same few questions
/// again and again, and a cached answer only needs the new query's ID and question (its
/// letter case) copied in. Only plain queries are cached (one question, no records but an
/// optional EDNS(0) OPT), keyed by everything the answer depends on: the lowercased question,
/// RD, CD, the EDNS DO bit and the size limit. Bounded; cleared when the zones change.
final class AnswerCache: Sendable {
    /// Shards, so the event loops of the UDP sockets rarely wait for one another. Each is an
    /// open-addressed table of slots that hold the key's hash and, in one array, the key and the
    /// answer: a lookup touches the slot and that array, nothing else (a `Dictionary` keyed by
    /// arrays took five cache misses and a SipHash per query, 6% of a query's CPU).
    private let shards: [NIOLockedValueBox<Shard>] = (0..<AnswerCache.shardCount).map { _ in NIOLockedValueBox(Shard()) }
    static let maximumEntries = 65_536
    static let shardCount = 16
    /// Slots looked at per lookup or store: a key whose slots are all taken replaces one of
    /// them, so no question (however its hash collides) costs more than this.
    static let maximumProbes = 8
    /// Keys are hashed with a seed of this process, so which questions collide cannot be
    /// worked out from outside.
    static let seed = UInt64.random(in: 1...UInt64.max)

    struct Slot {
        /// 0: empty.
        var hash: UInt64 = 0
        var keyLength = 0
        /// The key's bytes, then the answer's.
        var bytes: [UInt8] = []
    }

    struct Shard {
        var generation = 0
        /// Made on the first store (a service that is never asked costs no memory).
        var slots: [Slot] = []

        /// The slot holding this key, or nil.
        func find(_ key: Key) -> Int? {
            guard !slots.isEmpty else { return nil }
            let mask = slots.count - 1
            var index = Int(truncatingIfNeeded: key.hash) & mask
            for _ in 0..<AnswerCache.maximumProbes {
                let slot = slots[index]
                if slot.hash == 0 { return nil }
                if slot.hash == key.hash, slot.keyLength == key.bytes.count,
                   slot.bytes.withUnsafeBytes({ stored in key.bytes.withUnsafeBytes { memcmp(stored.baseAddress!, $0.baseAddress!, $0.count) == 0 } }) {
                    return index
                }
                index = (index + 1) & mask
            }
            return nil
        }

        mutating func store(_ answer: [UInt8], for key: Key) {
            if slots.isEmpty { slots = [Slot](repeating: Slot(), count: AnswerCache.maximumEntries / AnswerCache.shardCount) }
            let mask = slots.count - 1
            let first = Int(truncatingIfNeeded: key.hash) & mask
            var target = (first + Int(truncatingIfNeeded: key.hash >> 58) % AnswerCache.maximumProbes) & mask
            var index = first
            for _ in 0..<AnswerCache.maximumProbes {
                let slot = slots[index]
                if slot.hash == 0 || (slot.hash == key.hash && slot.keyLength == key.bytes.count && slot.bytes.starts(with: key.bytes)) {
                    target = index
                    break
                }
                index = (index + 1) & mask
            }
            var bytes = [UInt8]()
            bytes.reserveCapacity(key.bytes.count + answer.count)
            bytes.append(contentsOf: key.bytes)
            bytes.append(contentsOf: answer)
            slots[target] = Slot(hash: key.hash, keyLength: key.bytes.count, bytes: bytes)
        }
    }

    private func shard(_ key: Key) -> NIOLockedValueBox<Shard> {
        shards[Int(truncatingIfNeeded: key.hash >> 60) & (Self.shardCount - 1)]
    }

    /// The key's hash (never 0): eight bytes at a time, multiplied and folded.
    static func hash(_ bytes: [UInt8]) -> UInt64 {
        var hash = seed ^ UInt64(truncatingIfNeeded: bytes.count)
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset + 8 <= raw.count {
                hash = mix(hash ^ raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                offset += 8
            }
            if offset < raw.count {
                var tail: UInt64 = 0
                for byte in raw[offset...].reversed() { tail = tail << 8 | UInt64(byte) }
                hash = mix(hash ^ tail)
            }
        }
        return hash == 0 ? 1 : hash
    }

    @inline(__always)
    private static func mix(_ value: UInt64) -> UInt64 {
        // MurmurHash3's 64-bit finaliser.
        var x = value
        x ^= x >> 33
        x &*= 0xFF51_AFD7_ED55_8CCD
        x ^= x >> 33
        x &*= 0xC4CE_B9FE_1A85_EC53
        x ^= x >> 33
        return x
    }

    /// A query's cache key and where its question lies, if the query is plain enough.
    struct Key {
        var bytes: [UInt8]
        var hash: UInt64
        var question: Range<Int>
        /// The largest answer this query may get: 65535 over TCP; over UDP its EDNS size
        /// (512...1232), or 512 without EDNS.
        var limit: Int
    }

    static func key<Bytes: RandomAccessCollection>(for query: Bytes, tcp: Bool, maximumUDP: Int) -> Key? where Bytes.Element == UInt8, Bytes.Index == Int {
        guard query.count >= 17, query[2] & 0xF8 == 0, query[4] == 0, query[5] == 1,
              query[6] == 0, query[7] == 0, query[8] == 0, query[9] == 0, query[10] == 0, query[11] <= 1 else { return nil }
        var position = 12
        var length = 1
        while true {
            guard position < query.count else { return nil }
            let label = Int(query[position])
            if label == 0 { break }
            guard label < 64 else { return nil }
            length += label + 1
            guard length <= 255 else { return nil }
            position += label + 1
        }
        let questionEnd = position + 1 + 4
        guard questionEnd <= query.count else { return nil }
        var key = [UInt8]()
        key.reserveCapacity(questionEnd - 12 + 8)
        for byte in query[12..<questionEnd] { key.append((65...90).contains(byte) ? byte | 0x20 : byte) }
        key.append(query[2] & 0x01)  // RD
        key.append(query[3] & 0x10)  // CD
        var limit = tcp ? 65_535 : 512
        if query[11] == 1 {
            // The OPT record: root owner, type 41; version 0 only (others get BADVERS the slow way).
            let opt = questionEnd
            guard opt + 11 <= query.count, query[opt] == 0, query[opt + 1] == 0, query[opt + 2] == 41,
                  query[opt + 6] == 0 else { return nil }
            let rdLength = Int(query[opt + 9]) << 8 | Int(query[opt + 10])
            guard opt + 11 + rdLength == query.count else { return nil }
            key.append(1)
            key.append(query[opt + 7] & 0x80)  // DO
            if !tcp { limit = max(512, min(Int(query[opt + 3]) << 8 | Int(query[opt + 4]), maximumUDP)) }
        } else {
            guard questionEnd == query.count else { return nil }
            key.append(0)
        }
        key.append(UInt8(limit >> 8))
        key.append(UInt8(limit & 0xFF))
        return Key(bytes: key, hash: hash(key), question: 12..<questionEnd, limit: limit)
    }

    /// How many answers are kept (tests).
    var count: Int {
        shards.reduce(0) { total, shard in total + shard.withLockedValue { $0.slots.count(where: { $0.hash != 0 }) } }
    }

    /// The cached answer, without the query's ID and question copied in.
    func cached(_ key: Key, generation: Int) -> ArraySlice<UInt8>? {
        shard(key).withLockedValue { shard in
            guard shard.generation == generation, let index = shard.find(key) else { return nil }
            let slot = shard.slots[index]
            return slot.bytes[slot.keyLength...]
        }
    }

    func answer(for key: Key, query: [UInt8], generation: Int) -> [UInt8]? {
        guard let cached = cached(key, generation: generation) else { return nil }
        var answer = Array(cached)
        answer[0] = query[0]
        answer[1] = query[1]
        answer.replaceSubrange(key.question, with: query[key.question])
        return answer
    }

    func store(_ answer: [UInt8], for key: Key, generation: Int) {
        guard answer.count >= key.question.upperBound else { return }
        shard(key).withLockedValue { shard in
            if shard.generation != generation {
                shard = Shard()
                shard.generation = generation
            }
            shard.store(answer, for: key)
        }
    }
}
