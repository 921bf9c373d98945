import NIOCore

/// The messages of PostgreSQL's frontend/backend protocol (version 3.0) that SecureChat uses, as
/// plain values: what the client sends (`Frontend`), what the server sends (`Backend`), and the
/// byte layouts of both. No I/O here; `PostgresConnection` moves the bytes.
///
/// Every query goes through the extended protocol with text parameters (Parse, Bind, Describe,
/// Execute, Sync), so values never become part of the SQL text.
public enum PostgresMessage {
    /// What a client sends.
    enum Frontend {
        /// Asks the server to switch to TLS before the startup message.
        case sslRequest
        case startup(user: String, database: String, applicationName: String)
        /// A cleartext password, or SASL data (the first SASL message names the mechanism).
        case password([UInt8])
        case saslInitial(mechanism: String, data: [UInt8])
        case saslResponse([UInt8])
        /// A whole script in the simple protocol (schema migrations; no parameters).
        case simpleQuery(String)
        /// Parse, Bind, Describe and Execute of one statement, then Sync. A named `statement`
        /// is parsed once (`parse`) and only bound and executed after.
        case extendedQuery(sql: String, parameters: [String?], statement: String = "", parse: Bool = true)
        case terminate

        /// Appends the message's bytes to `buffer`.
        func write(into buffer: inout ByteBuffer) {
            switch self {
            case .sslRequest:
                buffer.writeInteger(Int32(8))
                buffer.writeInteger(Int32(80_877_103))
            case let .startup(user, database, applicationName):
                let start = buffer.writerIndex
                buffer.writeInteger(Int32(0))
                buffer.writeInteger(Int32(196_608))  // protocol 3.0
                for (key, value) in [("user", user), ("database", database), ("application_name", applicationName), ("client_encoding", "UTF8")] {
                    buffer.writeCString(key)
                    buffer.writeCString(value)
                }
                buffer.writeInteger(UInt8(0))
                buffer.setInteger(Int32(buffer.writerIndex - start), at: start)
            case let .password(bytes):
                Self.message("p", into: &buffer) { $0.writeBytes(bytes); $0.writeInteger(UInt8(0)) }
            case let .saslInitial(mechanism, data):
                Self.message("p", into: &buffer) {
                    $0.writeCString(mechanism)
                    $0.writeInteger(Int32(data.count))
                    $0.writeBytes(data)
                }
            case let .saslResponse(data):
                Self.message("p", into: &buffer) { $0.writeBytes(data) }
            case let .simpleQuery(sql):
                Self.message("Q", into: &buffer) { $0.writeCString(sql) }
            case let .extendedQuery(sql, parameters, statement, parse):
                if parse {
                    Self.message("P", into: &buffer) {
                        $0.writeCString(statement)  // "" is the unnamed statement
                        $0.writeCString(sql)
                        $0.writeInteger(Int16(0))  // let the server infer every parameter's type
                    }
                }
                Self.message("B", into: &buffer) {
                    $0.writeCString("")  // unnamed portal
                    $0.writeCString(statement)
                    $0.writeInteger(Int16(0))  // all parameters in text format
                    $0.writeInteger(Int16(parameters.count))
                    for parameter in parameters {
                        if let parameter {
                            $0.writeInteger(Int32(parameter.utf8.count))
                            $0.writeString(parameter)
                        } else {
                            $0.writeInteger(Int32(-1))
                        }
                    }
                    $0.writeInteger(Int16(0))  // all results in text format
                }
                Self.message("D", into: &buffer) { $0.writeInteger(UInt8(ascii: "P")); $0.writeCString("") }
                Self.message("E", into: &buffer) { $0.writeCString(""); $0.writeInteger(Int32(0)) }
                Self.message("S", into: &buffer) { _ in }
            case .terminate:
                Self.message("X", into: &buffer) { _ in }
            }
        }

        private static func message(_ type: Character, into buffer: inout ByteBuffer, _ body: (inout ByteBuffer) -> Void) {
            buffer.writeInteger(type.asciiValue!)
            let lengthAt = buffer.writerIndex
            buffer.writeInteger(Int32(0))
            body(&buffer)
            buffer.setInteger(Int32(buffer.writerIndex - lengthAt), at: lengthAt)
        }
    }

    /// What a server sends (the ones SecureChat acts on; others are `.other`).
    enum Backend: Equatable {
        case authenticationOK
        case cleartextPasswordRequested
        case md5PasswordRequested
        case saslMechanisms([String])
        case saslContinue([UInt8])
        case saslFinal([UInt8])
        case otherAuthentication(Int32)
        case parameterStatus(name: String, value: String)
        case backendKeyData
        case readyForQuery(status: UInt8)
        case rowDescription([String])
        case dataRow([String?])
        case commandComplete(String)
        case emptyQuery
        case error(PostgresError.Fields)
        case notice(PostgresError.Fields)
        case notification(channel: String, payload: String)
        case parseComplete, bindComplete, noData, portalSuspended
        case other(UInt8)

        /// Longest message accepted from the server: a row of SecureChat's tables is far smaller.
        static let maximumLength = 64 << 20

        /// Takes one whole message off the front of `buffer`, or nil if more bytes are needed.
        static func read(from buffer: inout ByteBuffer) throws(PostgresError) -> Backend? {
            guard buffer.readableBytes >= 5,
                  let type: UInt8 = buffer.getInteger(at: buffer.readerIndex),
                  let length: Int32 = buffer.getInteger(at: buffer.readerIndex + 1)
            else { return nil }
            guard length >= 4, Int(length) <= maximumLength else {
                throw .protocolViolation("a message of type '\(Character(Unicode.Scalar(type)))' claims \(length) bytes")
            }
            guard buffer.readableBytes >= 1 + Int(length) else { return nil }
            buffer.moveReaderIndex(forwardBy: 5)
            var body = buffer.readSlice(length: Int(length) - 4)!
            do {
                return try parse(type: type, body: &body)
            } catch {
                throw .protocolViolation("a malformed message of type '\(Character(Unicode.Scalar(type)))'")
            }
        }

        private struct Truncated: Error {}

        private static func parse(type: UInt8, body: inout ByteBuffer) throws -> Backend {
            func int16() throws -> Int16 { guard let v: Int16 = body.readInteger() else { throw Truncated() }; return v }
            func int32() throws -> Int32 { guard let v: Int32 = body.readInteger() else { throw Truncated() }; return v }
            func cString() throws -> String {
                guard let end = body.readableBytesView.firstIndex(of: 0) else { throw Truncated() }
                let text = body.readString(length: end - body.readerIndex)!
                body.moveReaderIndex(forwardBy: 1)
                return text
            }
            func rest() -> [UInt8] { body.readBytes(length: body.readableBytes) ?? [] }
            func fields() throws -> PostgresError.Fields {
                var fields = PostgresError.Fields()
                while let code: UInt8 = body.readInteger(), code != 0 {
                    let value = try cString()
                    switch code {
                    case UInt8(ascii: "S"): fields.severity = value
                    case UInt8(ascii: "C"): fields.code = value
                    case UInt8(ascii: "M"): fields.message = value
                    case UInt8(ascii: "D"): fields.detail = value
                    case UInt8(ascii: "H"): fields.hint = value
                    default: break
                    }
                }
                return fields
            }
            switch type {
            case UInt8(ascii: "R"):
                switch try int32() {
                case 0: return .authenticationOK
                case 3: return .cleartextPasswordRequested
                case 5: return .md5PasswordRequested
                case 10:
                    var names: [String] = []
                    while body.readableBytes > 1 { names.append(try cString()) }
                    return .saslMechanisms(names)
                case 11: return .saslContinue(rest())
                case 12: return .saslFinal(rest())
                case let code: return .otherAuthentication(code)
                }
            case UInt8(ascii: "S"): return .parameterStatus(name: try cString(), value: try cString())
            case UInt8(ascii: "K"): return .backendKeyData
            case UInt8(ascii: "Z"):
                guard let status: UInt8 = body.readInteger() else { throw Truncated() }
                return .readyForQuery(status: status)
            case UInt8(ascii: "T"):
                let count = try int16()
                var names: [String] = []
                for _ in 0..<max(0, Int(count)) {
                    names.append(try cString())
                    guard body.readSlice(length: 18) != nil else { throw Truncated() }
                }
                return .rowDescription(names)
            case UInt8(ascii: "D"):
                let count = try int16()
                var values: [String?] = []
                values.reserveCapacity(Int(max(0, count)))
                for _ in 0..<max(0, Int(count)) {
                    let length = try int32()
                    if length < 0 {
                        values.append(nil)
                    } else {
                        guard let text = body.readString(length: Int(length)) else { throw Truncated() }
                        values.append(text)
                    }
                }
                return .dataRow(values)
            case UInt8(ascii: "C"): return .commandComplete(try cString())
            case UInt8(ascii: "I"): return .emptyQuery
            case UInt8(ascii: "E"): return .error(try fields())
            case UInt8(ascii: "N"): return .notice(try fields())
            case UInt8(ascii: "A"):
                _ = try int32()
                return .notification(channel: try cString(), payload: try cString())
            case UInt8(ascii: "1"): return .parseComplete
            case UInt8(ascii: "2"): return .bindComplete
            case UInt8(ascii: "n"): return .noData
            case UInt8(ascii: "s"): return .portalSuspended
            default: return .other(type)
            }
        }
    }
}

extension ByteBuffer {
    mutating func writeCString(_ text: String) {
        writeString(text)
        writeInteger(UInt8(0))
    }
}
