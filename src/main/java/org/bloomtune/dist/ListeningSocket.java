package org.bloomtune.dist;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.UnknownHostException;

/**
 * A listening TCP socket bound to exactly the address the user named, made through the C library
 * (FFM): libtorch's TCPStore, left to itself, listens on every interface even when told 127.0.0.1,
 * but it takes a ready socket's file descriptor ({@code masterListenFd}) instead.
 */
final class ListeningSocket {
    private static final int AF_INET = 2;
    private static final int SOCK_STREAM = 1;
    private static final int SOL_SOCKET = 1;
    private static final int SO_REUSEADDR = 2;
    private static final int EADDRINUSE = 98;
    private static final int EADDRNOTAVAIL = 99;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final Linker.Option ERRNO = Linker.Option.captureCallState("errno");
    private static final VarHandle ERRNO_HANDLE = Linker.Option.captureStateLayout().varHandle(java.lang.foreign.MemoryLayout.PathElement.groupElement("errno"));

    private ListeningSocket() {}

    /** The descriptor of a socket listening on {@code address:port}; owned by whoever takes it (the store). */
    static int open(String address, int port) {
        byte[] ip = ipv4(address);
        SymbolLookup libc = LINKER.defaultLookup();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(Linker.Option.captureStateLayout());
            MethodHandle socket = LINKER.downcallHandle(libc.find("socket").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT), ERRNO);
            MethodHandle setsockopt = LINKER.downcallHandle(libc.find("setsockopt").orElseThrow(), FunctionDescriptor.of(ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
            MethodHandle bind = LINKER.downcallHandle(libc.find("bind").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT), ERRNO);
            MethodHandle listen = LINKER.downcallHandle(libc.find("listen").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT), ERRNO);
            MethodHandle close = LINKER.downcallHandle(libc.find("close").orElseThrow(), FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
            int fd = (int) socket.invokeExact(state, AF_INET, SOCK_STREAM, 0);
            if (fd < 0) throw new IllegalStateException("socket() failed, errno " + errno(state));
            MemorySegment one = arena.allocateFrom(ValueLayout.JAVA_INT, 1);
            int ignored = (int) setsockopt.invokeExact(fd, SOL_SOCKET, SO_REUSEADDR, one, 4);
            // struct sockaddr_in: family (host order), port and address (network order), 8 bytes of zeros.
            MemorySegment sa = arena.allocate(16);
            sa.set(ValueLayout.JAVA_SHORT, 0, (short) AF_INET);
            sa.set(ValueLayout.JAVA_BYTE, 2, (byte) (port >> 8));
            sa.set(ValueLayout.JAVA_BYTE, 3, (byte) port);
            for (int i = 0; i < 4; i++) sa.set(ValueLayout.JAVA_BYTE, 4 + i, ip[i]);
            if ((int) bind.invokeExact(state, fd, sa, 16) != 0) {
                int e = errno(state);
                int closed = (int) close.invokeExact(fd);
                if (e == EADDRINUSE) throw new IllegalArgumentException("port " + port + " on " + address + " is in use: choose another --master-port");
                if (e == EADDRNOTAVAIL) throw new IllegalArgumentException(address + " is not an address of this machine, so rank 0 cannot serve there");
                throw new IllegalArgumentException("cannot listen on " + address + ":" + port + " (errno " + e + ")");
            }
            if ((int) listen.invokeExact(state, fd, 128) != 0) throw new IllegalStateException("listen() failed, errno " + errno(state));
            return fd;
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("cannot open a listening socket through the C library", t);
        }
    }

    private static int errno(MemorySegment state) { return (int) ERRNO_HANDLE.get(state, 0L); }

    private static byte[] ipv4(String address) {
        try {
            InetAddress a = InetAddress.getByName(address);
            if (!(a instanceof Inet4Address)) throw new IllegalArgumentException("the master address must be IPv4: " + address);
            return a.getAddress();
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("unknown master address " + address, e);
        }
    }
}
