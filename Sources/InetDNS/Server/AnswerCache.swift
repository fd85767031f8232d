import NIOConcurrencyHelpers

/// Encoded answers kept for reuse: an authoritative server answers the same few questions
/// again and again, and a cached answer only needs the new query's ID and question (its
/// letter case) copied in. Only plain queries are cached (one question, no records but an
/// optional EDNS(0) OPT), keyed by everything the answer depends on: the lowercased question,
/// RD, CD, the EDNS DO bit and the size limit. Bounded; cleared when the zones change.
final class AnswerCache: Sendable {
    /// Shards, so the event loops of the UDP sockets rarely wait for one another; each keeps two
    /// generations (the current one fills up, then becomes the previous one), so a full cache
    /// forgets its oldest answers instead of all of them.
    private let shards: [NIOLockedValueBox<Shard>] = (0..<16).map { _ in NIOLockedValueBox(Shard()) }
    static let maximumEntries = 65_536

    struct Shard {
        var generation = 0
        var current: [CacheKey: [UInt8]] = [:]
        var previous: [CacheKey: [UInt8]] = [:]
    }

    /// The key's bytes, hashed in one call rather than byte by byte.
    struct CacheKey: Hashable {
        var bytes: [UInt8]

        func hash(into hasher: inout Hasher) {
            bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
        }
    }

    private func shard(_ key: Key) -> NIOLockedValueBox<Shard> {
        var hash: UInt32 = 2_166_136_261
        for byte in key.bytes { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return shards[Int(hash % UInt32(shards.count))]
    }

    /// A query's cache key and where its question lies, if the query is plain enough.
    struct Key {
        var bytes: [UInt8]
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
        return Key(bytes: key, question: 12..<questionEnd, limit: limit)
    }

    /// The cached answer, without the query's ID and question copied in.
    func cached(_ key: Key, generation: Int) -> [UInt8]? {
        shard(key).withLockedValue { shard in
            guard shard.generation == generation else { return nil }
            if let answer = shard.current[CacheKey(bytes: key.bytes)] { return answer }
            guard let answer = shard.previous[CacheKey(bytes: key.bytes)] else { return nil }
            // Still in use: keep it in the current generation.
            shard.current[CacheKey(bytes: key.bytes)] = answer
            return answer
        }
    }

    func answer(for key: Key, query: [UInt8], generation: Int) -> [UInt8]? {
        guard var answer = cached(key, generation: generation) else { return nil }
        answer[0] = query[0]
        answer[1] = query[1]
        answer.replaceSubrange(key.question, with: query[key.question])
        return answer
    }

    func store(_ answer: [UInt8], for key: Key, generation: Int) {
        guard answer.count >= key.question.upperBound else { return }
        let perShard = Self.maximumEntries / shards.count
        shard(key).withLockedValue { shard in
            if shard.generation != generation {
                shard = Shard()
                shard.generation = generation
            }
            if shard.current.count >= perShard {
                shard.previous = shard.current
                shard.current = [:]
                shard.current.reserveCapacity(perShard)
            }
            shard.current[CacheKey(bytes: key.bytes)] = answer
        }
    }
}
