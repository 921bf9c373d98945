import COpenSSL
import NIOCore

/// The two ByteBuffers behind one OpenSSL BIO: ciphertext received and not yet read by OpenSSL,
/// and ciphertext OpenSSL wrote and nobody has taken yet.
///
/// A custom BIO instead of OpenSSL's memory BIO for two reasons: received bytes are handed over
/// without a copy, and an idle connection keeps no buffer at all (a memory BIO keeps its largest
/// allocation for the life of the connection).
final class ByteBufferBIO {
    private(set) var bio: OpaquePointer
    var inbound: ByteBuffer?
    var outbound: ByteBuffer?
    let allocator: ByteBufferAllocator

    init(allocator: ByteBufferAllocator) {
        self.allocator = allocator
        self.bio = BIO_new(byteBufferBIOMethod)!
        BIO_set_data(bio, Unmanaged.passUnretained(self).toOpaque())
    }

    /// Queues received ciphertext for OpenSSL to read.
    func receive(_ buffer: ByteBuffer) {
        guard buffer.readableBytes > 0 else { return }
        if inbound == nil || inbound!.readableBytes == 0 {
            inbound = buffer
        } else {
            var more = buffer
            inbound!.writeBuffer(&more)
        }
    }

    /// Takes everything OpenSSL wrote since the last call.
    func takeOutbound() -> ByteBuffer? {
        defer { outbound = nil }
        return outbound
    }

    /// Ensures room for `count` more outbound bytes.
    func reserveOutbound(_ count: Int) {
        if outbound == nil {
            outbound = allocator.buffer(capacity: count)
        } else {
            outbound!.reserveCapacity(minimumWritableBytes: count)
        }
    }

    var inboundBytes: Int { inbound?.readableBytes ?? 0 }
    var outboundBytes: Int { outbound?.readableBytes ?? 0 }

    fileprivate static func from(_ bio: OpaquePointer?) -> ByteBufferBIO? {
        guard let bio, let data = BIO_get_data(bio) else { return nil }
        return Unmanaged<ByteBufferBIO>.fromOpaque(data).takeUnretainedValue()
    }
}

private let retryRead = Int32(BIO_FLAGS_READ | BIO_FLAGS_SHOULD_RETRY)
private let allRetryFlags = Int32(BIO_FLAGS_READ | BIO_FLAGS_WRITE | BIO_FLAGS_IO_SPECIAL | BIO_FLAGS_SHOULD_RETRY)

/// The BIO method, created once per process. OpenSSL never frees it; neither do we.
nonisolated(unsafe) private let byteBufferBIOMethod: OpaquePointer = {
    let method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "SecureChat ByteBuffer BIO")!
    BIO_meth_set_create(method) { bio in
        BIO_set_init(bio, 1)
        return 1
    }
    BIO_meth_set_destroy(method) { bio in
        BIO_set_data(bio, nil)
        return 1
    }
    BIO_meth_set_read(method) { bio, data, length in
        BIO_clear_flags(bio, allRetryFlags)
        guard let box = ByteBufferBIO.from(bio), let data, length > 0 else { return 0 }
        guard box.inboundBytes > 0 else {
            // Nothing yet is "try again later", never end of file: the handler signals EOF itself.
            BIO_set_flags(bio, retryRead)
            return -1
        }
        let count = min(Int(length), box.inboundBytes)
        box.inbound!.readWithUnsafeReadableBytes { source in
            UnsafeMutableRawPointer(data).copyMemory(from: source.baseAddress!, byteCount: count)
            return count
        }
        if box.inbound!.readableBytes == 0 { box.inbound = nil }
        return Int32(count)
    }
    BIO_meth_set_write(method) { bio, data, length in
        BIO_clear_flags(bio, allRetryFlags)
        guard let box = ByteBufferBIO.from(bio), let data, length > 0 else { return 0 }
        let bytes = UnsafeRawBufferPointer(start: data, count: Int(length))
        if box.outbound == nil {
            box.outbound = box.allocator.buffer(capacity: max(Int(length), 2048))
        }
        box.outbound!.writeBytes(bytes)
        return length
    }
    BIO_meth_set_ctrl(method) { bio, command, _, _ in
        switch command {
        case BIO_CTRL_FLUSH, BIO_CTRL_DUP:
            return 1
        case BIO_CTRL_PENDING:
            return ByteBufferBIO.from(bio)?.inboundBytes ?? 0
        case BIO_CTRL_WPENDING:
            return ByteBufferBIO.from(bio)?.outboundBytes ?? 0
        case BIO_CTRL_GET_CLOSE:
            return Int(BIO_get_shutdown(bio))
        case BIO_CTRL_SET_CLOSE:
            return 1
        default:
            return 0
        }
    }
    return method
}()
