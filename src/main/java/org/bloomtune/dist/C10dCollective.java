package org.bloomtune.dist;

import org.bloomtune.tensor.LibTorch;
import org.bytedeco.javacpp.chrono.Milliseconds;
import org.bytedeco.pytorch.AllreduceOptions;
import org.bytedeco.pytorch.Backend;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.BroadcastOptions;
import org.bytedeco.pytorch.ByteVector;
import org.bytedeco.pytorch.IntOptional;
import org.bytedeco.pytorch.ProcessGroupGloo;
import org.bytedeco.pytorch.ReduceOp;
import org.bytedeco.pytorch.Store;
import org.bytedeco.pytorch.TCPStore;
import org.bytedeco.pytorch.TCPStoreOptions;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.Work;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.nccl.ProcessGroupNCCL;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The collectives over libtorch's c10d, the engine PyTorch's DDP runs on: a TCPStore for the
 * rendezvous (served by rank 0 on a socket bound to exactly the master address), and a Gloo process
 * group on CPU or an NCCL one on CUDA (each rank on the GPU of its local rank; tensors travel there
 * and back — the prompt's gradient is small). Every rank beats a heartbeat into the store, so when a
 * collective fails the survivors can say which rank stopped.
 */
public final class C10dCollective implements Collective {
    private static final long BEAT_MILLIS = 1000;

    private final DistributedConfig config;
    private final Store store;
    private final Backend group;
    private final Device device;        // where the backend wants tensors: CPU for Gloo, the rank's GPU for NCCL
    private final Thread heartbeat;
    private volatile boolean closed;

    private C10dCollective(DistributedConfig config, Store store, Backend group, Device device) {
        this.config = config;
        this.store = store;
        this.group = group;
        this.device = device;
        this.heartbeat = Thread.ofPlatform().daemon().name("bloomtune-heartbeat").start(this::beat);
    }

    /** Joins on CPU (Gloo). */
    public static C10dCollective join(DistributedConfig config) { return join(config, "cpu"); }

    /**
     * Joins the run {@code config} describes — Gloo for {@code device} "cpu", NCCL for "cuda" —
     * returning once every rank has joined, or failing within the timeout.
     */
    public static C10dCollective join(DistributedConfig config, String device) {
        LibTorch.init();
        Milliseconds timeout = new Milliseconds(config.timeout().toMillis());
        TCPStoreOptions options = new TCPStoreOptions();
        options.port((short) config.masterPort()).isServer(config.rank() == 0).waitWorkers(false).timeout(timeout).useLibUV(false);
        if (config.rank() == 0) options.masterListenFd(new IntOptional(ListeningSocket.open(config.masterAddr(), config.masterPort())));
        Store store;
        try {
            store = new TCPStore(config.masterAddr(), options);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("rank " + config.rank() + " cannot reach the master at " + config.masterAddr() + ":"
                    + config.masterPort() + " within " + config.timeout().toSeconds() + " s (" + firstLine(e) + ")", e);
        }
        try {
            if (device.startsWith("cuda")) return nccl(config, store, timeout);
            ProcessGroupGloo.Options gloo = ProcessGroupGloo.Options.create(timeout);
            gloo.devices().push_back(glooDevice(config.masterAddr()));
            Backend group = new ProcessGroupGloo(store, config.rank(), config.worldSize(), gloo);
            return new C10dCollective(config, store, group, new Device(torch.DeviceType.CPU));
        } catch (IllegalArgumentException e) {
            throw e;
        } catch (RuntimeException e) {
            throw new IllegalStateException("rank " + config.rank() + ": the process group did not form within "
                    + config.timeout().toSeconds() + " s (" + firstLine(e) + ")", e);
        }
    }

    // NCCL needs the CUDA build (-Pgpu) and a GPU per rank: written to libtorch's documented API, not run here.
    private static C10dCollective nccl(DistributedConfig config, Store store, Milliseconds timeout) {
        org.bloomtune.tensor.Devices.requireAvailable("cuda:" + config.localRank());
        ProcessGroupNCCL.Options options = ProcessGroupNCCL.Options.create(false);
        options.timeout(timeout);
        Backend group = new ProcessGroupNCCL(store, config.rank(), config.worldSize(), options);
        return new C10dCollective(config, store, group, new Device("cuda:" + config.localRank()));
    }

    // On loopback every rank is on this machine: keep Gloo there too. Else the interface GLOO_SOCKET_IFNAME names, or the host's.
    private static org.bytedeco.pytorch.gloo.Device glooDevice(String master) {
        try {
            if (InetAddress.getByName(master).isLoopbackAddress()) return ProcessGroupGloo.createDeviceForHostname("127.0.0.1");
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("unknown master address " + master, e);
        }
        String iface = System.getenv("GLOO_SOCKET_IFNAME");
        return iface != null ? ProcessGroupGloo.createDeviceForInterface(iface) : ProcessGroupGloo.createDefaultDevice();
    }

    @Override
    public int rank() { return config.rank(); }

    @Override
    public int worldSize() { return config.worldSize(); }

    @Override
    public void allReduceSum(Tensor t, String what) { allReduce(t, ReduceOp.RedOpType.SUM, what); }

    @Override
    public void allReduceMax(Tensor t, String what) { allReduce(t, ReduceOp.RedOpType.MAX, what); }

    private void allReduce(Tensor t, ReduceOp.RedOpType op, String what) {
        boolean copy = needsCopy(t);
        try (Tensor there = copy ? t.to(device, t.scalar_type()) : t.alias(); TensorVector v = new TensorVector(there);
             AllreduceOptions o = new AllreduceOptions()) {
            o.reduceOp(new ReduceOp(op));
            await(group.allreduce(v, o), "the all-reduce of " + what);
            if (copy) t.copy_(there);
        }
    }

    @Override
    public void broadcast(Tensor t, int root, String what) {
        boolean copy = needsCopy(t);
        try (Tensor there = copy ? t.to(device, t.scalar_type()) : t.alias(); TensorVector v = new TensorVector(there);
             BroadcastOptions o = new BroadcastOptions()) {
            o.rootRank(root);
            await(group.broadcast(v, o), "the broadcast of " + what);
            if (copy) t.copy_(there);
        }
    }

    /** Gloo works on the CPU tensor in place; NCCL needs it on the rank's GPU. */
    private boolean needsCopy(Tensor t) {
        return !(device.is_cpu() && t.device().is_cpu());
    }

    @Override
    public void barrier(String what) {
        try (Tensor t = org.bytedeco.pytorch.global.torch.zeros(1)) {
            allReduceSum(t, what);
        }
    }

    private void await(Work work, String what) {
        try (work) {
            work._wait();
        } catch (RuntimeException e) {
            throw new PeerFailure("rank " + config.rank() + ": " + what + " failed: " + diagnosis() + " (" + firstLine(e) + ")", e);
        }
    }

    /** A collective failed: the message names the ranks whose heartbeat stopped. */
    public static final class PeerFailure extends IllegalStateException {
        public PeerFailure(String message, Throwable cause) { super(message, cause); }
    }

    /**
     * Which ranks stopped beating: their heartbeats are read from the store twice, a few beats
     * apart; a rank whose beat did not move is dead or stuck. If the store itself is gone, so is
     * rank 0, which served it.
     */
    private String diagnosis() {
        try (Store s = store.clone()) {
            long[] first = beats(s);
            Thread.sleep(3 * BEAT_MILLIS);
            long[] second = beats(s);
            List<String> stopped = new ArrayList<>();
            for (int r = 0; r < config.worldSize(); r++) {
                if (r != config.rank() && first[r] == second[r]) {
                    stopped.add("rank " + r + " (silent for " + Math.max(0, System.currentTimeMillis() - second[r]) / 1000 + " s)");
                }
            }
            return stopped.isEmpty() ? "every other rank is alive but did not take part within " + config.timeout().toSeconds() + " s"
                    : String.join(", ", stopped) + " stopped";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted while finding out which rank stopped";
        } catch (RuntimeException e) {
            return config.rank() == 0 ? "a peer is gone" : "rank 0 is gone (the rendezvous store it served does not answer)";
        }
    }

    private long[] beats(Store s) {
        long[] out = new long[config.worldSize()];
        for (int r = 0; r < out.length; r++) {
            if (r == config.rank()) continue;
            try (ByteVector v = s.get("beat/" + r)) {
                out[r] = Long.parseLong(new String(bytes(v), StandardCharsets.US_ASCII));
            }
        }
        return out;
    }

    private void beat() {
        try (Store s = store.clone()) {
            while (!closed) {
                s.set("beat/" + config.rank(), new ByteVector(Long.toString(System.currentTimeMillis()).getBytes(StandardCharsets.US_ASCII)));
                Thread.sleep(BEAT_MILLIS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            // the store went away: the next collective reports it
        }
    }

    private static byte[] bytes(ByteVector v) {
        byte[] out = new byte[(int) v.size()];
        for (int i = 0; i < out.length; i++) out[i] = v.get(i);
        return out;
    }

    private static String firstLine(Throwable e) {
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }

    @Override
    public void close() {
        closed = true;
        heartbeat.interrupt();
        try {
            group.shutdown();
        } catch (RuntimeException e) {
            // shutting down after a peer died: nothing to save
        }
        group.close();
        store.close();
    }
}
