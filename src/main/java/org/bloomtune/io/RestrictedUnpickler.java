package org.bloomtune.io;

import org.bloomtune.tensor.DType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.math.BigInteger;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads the {@code data.pkl} of a {@code torch.save} file without executing anything: a pickle
 * machine for the binary opcodes of protocols 2 to 5 whose only callables are the allow-listed
 * ones PyTorch's own {@code weights_only=True} loader accepts for a state dict — building a dict,
 * an {@code OrderedDict}, and tensors from storages. Any other global (say {@code os.system}) is
 * refused by name, never looked up, never called.
 */
final class RestrictedUnpickler {
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64_BIG_ENDIAN = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private static final Map<String, DType> STORAGES = Map.ofEntries(
            Map.entry("FloatStorage", DType.F32), Map.entry("HalfStorage", DType.F16), Map.entry("BFloat16Storage", DType.BF16),
            Map.entry("DoubleStorage", DType.F64), Map.entry("LongStorage", DType.I64), Map.entry("IntStorage", DType.I32),
            Map.entry("ShortStorage", DType.I16), Map.entry("CharStorage", DType.I8), Map.entry("ByteStorage", DType.U8),
            Map.entry("BoolStorage", DType.BOOL), Map.entry("UntypedStorage", DType.U8));

    /** A module-level name the pickle refers to; only allow-listed ones exist. */
    record Global(String module, String name) {
        @Override
        public String toString() { return module + "." + name; }
    }

    /** A storage the tensors view: zip entry {@code data/<key>} holding {@code numel} elements of {@code dtype}. */
    record StorageRef(String key, DType dtype, long numel) {}

    /** A tensor as {@code _rebuild_tensor_v2} describes it: a strided view of a storage. */
    record TensorRef(StorageRef storage, long offset, long[] shape, long[] stride) {}

    private static final Object MARK = new Object();

    private final Path file;
    private final MemorySegment pkl;
    private long pos;
    private final Deque<Object> stack = new ArrayDeque<>();
    private final Deque<Deque<Object>> marks = new ArrayDeque<>();
    private final Map<Long, Object> memo = new HashMap<>();

    private RestrictedUnpickler(Path file, MemorySegment pkl) {
        this.file = file;
        this.pkl = pkl;
    }

    /** The object {@code pkl} describes: for a state dict, a map from names to {@link TensorRef}s. */
    static Object load(Path file, MemorySegment pkl) {
        return new RestrictedUnpickler(file, pkl).run();
    }

    private Object run() {
        while (true) {
            int op = u8();
            switch (op) {
                case 0x80 -> { int protocol = u8(); if (protocol > 5) throw bad("pickle protocol " + protocol + " is newer than 5"); }   // PROTO
                case 0x95 -> bytes(8);                                                   // FRAME: a length hint only
                case '.' -> { return pop(); }                                            // STOP
                case '(' -> { marks.push(new ArrayDeque<>(stack)); stack.clear(); stack.push(MARK); }   // MARK
                case '0' -> pop();                                                       // POP
                case '1' -> popMark();                                                   // POP_MARK
                case '2' -> push(peek());                                                // DUP
                case 'N' -> push(null);                                                  // NONE
                case 0x88 -> push(Boolean.TRUE);                                         // NEWTRUE
                case 0x89 -> push(Boolean.FALSE);                                        // NEWFALSE
                case 'J' -> push((long) get(I32, 4));                                    // BININT
                case 'K' -> push((long) u8());                                           // BININT1
                case 'M' -> push((long) (get(I16, 2) & 0xFFFF));                         // BININT2
                case 0x8a -> push(longOf(bytes(u8())));                                  // LONG1
                case 0x8b -> push(longOf(bytes(length(get(I32, 4)))));                   // LONG4
                case 'G' -> push(pkl.get(F64_BIG_ENDIAN, advance(8)));                  // BINFLOAT
                case 'X' -> push(text(length(get(I32, 4))));                            // BINUNICODE
                case 0x8c -> push(text(u8()));                                           // SHORT_BINUNICODE
                case 0x8d -> push(text(length(get(I64, 8))));                           // BINUNICODE8
                case 'T' -> push(text(length(get(I32, 4))));                            // BINSTRING
                case 'U' -> push(text(u8()));                                            // SHORT_BINSTRING
                case 'B' -> push(bytes(length(get(I32, 4))));                           // BINBYTES
                case 'C' -> push(bytes(u8()));                                           // SHORT_BINBYTES
                case 0x8e -> push(bytes(length(get(I64, 8))));                          // BINBYTES8
                case '}' -> push(new LinkedHashMap<>());                                 // EMPTY_DICT
                case ']' -> push(new ArrayList<>());                                     // EMPTY_LIST
                case ')' -> push(List.of());                                             // EMPTY_TUPLE
                case 'd' -> push(dict(popMark()));                                       // DICT
                case 'l' -> push(new ArrayList<>(popMark()));                            // LIST
                case 't' -> push(List.copyOf(nullsAllowed(popMark())));                  // TUPLE
                case 0x85 -> push(tuple(1));                                             // TUPLE1
                case 0x86 -> push(tuple(2));                                             // TUPLE2
                case 0x87 -> push(tuple(3));                                             // TUPLE3
                case 's' -> { Object v = pop(); Object k = pop(); map(peek()).put(key(k), v); }   // SETITEM
                case 'u' -> { List<Object> items = popMark(); Map<String, Object> m = map(peek()); setItems(m, items); }  // SETITEMS
                case 'a' -> { Object v = pop(); list(peek()).add(v); }                  // APPEND
                case 'e' -> { List<Object> items = popMark(); list(peek()).addAll(items); }  // APPENDS
                case 'q' -> memo.put((long) u8(), peek());                              // BINPUT
                case 'r' -> memo.put(get(I32, 4) & 0xFFFFFFFFL, peek());                // LONG_BINPUT
                case 0x94 -> memo.put((long) memo.size(), peek());                       // MEMOIZE
                case 'h' -> push(memo((long) u8()));                                     // BINGET
                case 'j' -> push(memo(get(I32, 4) & 0xFFFFFFFFL));                       // LONG_BINGET
                case 'c' -> push(global(line(), line()));                                // GLOBAL
                case 0x93 -> { Object name = pop(); Object module = pop(); push(global(string(module), string(name))); }  // STACK_GLOBAL
                case 'Q' -> push(persistent(pop()));                                     // BINPERSID
                case 'R' -> { Object args = pop(); Object callable = pop(); push(reduce(callable, args)); }   // REDUCE
                case 'b' -> build(pop(), peek());                                        // BUILD
                default -> throw bad("pickle opcode 0x" + Integer.toHexString(op) + " at byte " + (pos - 1)
                        + " is not one a weights file needs; refused");
            }
        }
    }

    private Object global(String module, String name) {
        Global g = new Global(module, name);
        boolean allowed = switch (module) {
            case "collections" -> name.equals("OrderedDict");
            case "torch._utils" -> name.equals("_rebuild_tensor_v2") || name.equals("_rebuild_parameter");
            case "torch" -> STORAGES.containsKey(name);
            case "torch.storage" -> name.equals("UntypedStorage");
            default -> false;
        };
        if (!allowed) {
            throw bad("the pickle names the global " + g + ", which a weights file has no use for; refused without running it "
                    + "(only tensors, storages and dicts are read)");
        }
        return g;
    }

    private Object reduce(Object callable, Object args) {
        if (!(callable instanceof Global g)) throw bad("the pickle calls something that is not an allowed global");
        List<Object> a = tuple(args, g);
        return switch (g.toString()) {
            case "collections.OrderedDict" -> {
                Map<String, Object> m = new LinkedHashMap<>();
                if (!a.isEmpty()) for (Object pair : list(a.getFirst())) { List<Object> kv = tuple(pair, g); m.put(key(kv.get(0)), kv.get(1)); }
                yield m;
            }
            case "torch._utils._rebuild_tensor_v2" -> rebuildTensor(a);
            case "torch._utils._rebuild_parameter" -> {
                if (a.isEmpty() || !(a.getFirst() instanceof TensorRef t)) throw bad("_rebuild_parameter without a tensor");
                yield t;
            }
            default -> throw bad(g + " cannot be called");
        };
    }

    // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    private TensorRef rebuildTensor(List<Object> a) {
        if (a.size() < 4 || !(a.get(0) instanceof StorageRef storage)) throw bad("_rebuild_tensor_v2 needs a storage, offset, size and stride");
        long offset = number(a.get(1), "storage_offset");
        long[] shape = longs(a.get(2), "size");
        long[] stride = longs(a.get(3), "stride");
        if (shape.length != stride.length) throw bad("a tensor has " + shape.length + " sizes but " + stride.length + " strides");
        return new TensorRef(storage, offset, shape, stride);
    }

    // ('storage', storage_type, key, location, numel)
    private StorageRef persistent(Object pid) {
        List<Object> t = tuple(pid, null);
        if (t.size() != 5 || !"storage".equals(t.get(0)) || !(t.get(1) instanceof Global type)) {
            throw bad("a persistent id is not ('storage', type, key, location, numel)");
        }
        DType dtype = STORAGES.get(type.name());
        if (dtype == null) throw bad("unknown storage type " + type);
        String key = string(t.get(2));
        if (!key.matches("[A-Za-z0-9_.-]{1,64}")) throw bad("storage key '" + key + "' is not a plain name");
        return new StorageRef(key, dtype, number(t.get(4), "numel"));
    }

    // BUILD sets state on an object: an OrderedDict's attributes (a state dict's _metadata) are not weights.
    private void build(Object state, Object target) {
        if (!(target instanceof Map) && !(target instanceof TensorRef)) throw bad("BUILD on an object that is not a dict or tensor");
    }

    private void setItems(Map<String, Object> m, List<Object> items) {
        for (int i = 0; i + 1 < items.size(); i += 2) m.put(key(items.get(i)), items.get(i + 1));
    }

    private Map<String, Object> dict(List<Object> items) {
        if (items.size() % 2 != 0) throw bad("DICT with an odd number of items");
        Map<String, Object> m = new LinkedHashMap<>();
        setItems(m, items);
        return m;
    }

    private List<Object> tuple(int n) {
        Object[] items = new Object[n];
        for (int i = n - 1; i >= 0; i--) items[i] = pop();
        return java.util.Collections.unmodifiableList(java.util.Arrays.asList(items));
    }

    private List<Object> popMark() {
        List<Object> items = new ArrayList<>();
        while (true) {
            if (stack.isEmpty()) throw bad("MARK expected on the pickle stack");
            Object o = stack.pop();
            if (o == MARK) break;
            items.addFirst(o);
        }
        if (marks.isEmpty()) throw bad("unbalanced MARK");
        Deque<Object> below = marks.pop();
        stack.clear();
        stack.addAll(below);
        return items;
    }

    private static List<Object> nullsAllowed(List<Object> items) {
        return java.util.Collections.unmodifiableList(new ArrayList<>(items));
    }

    private void push(Object o) {
        if (stack.size() > 1 << 20) throw bad("the pickle stack grew past a million items");
        stack.push(o == null ? NullValue.INSTANCE : o);
    }

    private Object pop() {
        if (stack.isEmpty() || stack.peek() == MARK) throw bad("the pickle pops from an empty stack");
        Object o = stack.pop();
        return o == NullValue.INSTANCE ? null : o;
    }

    private Object peek() {
        if (stack.isEmpty() || stack.peek() == MARK) throw bad("the pickle reads an empty stack");
        Object o = stack.peek();
        return o == NullValue.INSTANCE ? null : o;
    }

    /** ArrayDeque holds no nulls; pickled None stands in as this. */
    private enum NullValue { INSTANCE }

    private Object memo(long index) {
        if (!memo.containsKey(index)) throw bad("the pickle refers to memo " + index + ", which was never stored");
        return memo.get(index);
    }

    @SuppressWarnings("unchecked")
    private Map<String, Object> map(Object o) {
        if (!(o instanceof Map)) throw bad("SETITEM(S) on something that is not a dict");
        return (Map<String, Object>) o;
    }

    @SuppressWarnings("unchecked")
    private List<Object> list(Object o) {
        if (!(o instanceof ArrayList)) throw bad("APPEND(S) on something that is not a list");
        return (List<Object>) o;
    }

    @SuppressWarnings("unchecked")
    private List<Object> tuple(Object o, Global context) {
        if (!(o instanceof List)) throw bad((context == null ? "a tuple" : "the arguments of " + context) + " expected");
        return (List<Object>) o;
    }

    private String key(Object o) {
        if (o instanceof String s) return s;
        throw bad("a state dict key is not a string: " + o);
    }

    private String string(Object o) {
        if (o instanceof String s) return s;
        throw bad("a string expected, found " + o);
    }

    private long number(Object o, String what) {
        if (o instanceof Long l && l >= 0) return l;
        throw bad(what + " must be a non-negative integer, found " + o);
    }

    private long[] longs(Object o, String what) {
        List<Object> t = tuple(o, null);
        if (t.size() > 16) throw bad("a tensor " + what + " of " + t.size() + " dimensions");
        long[] out = new long[t.size()];
        for (int i = 0; i < out.length; i++) out[i] = number(t.get(i), what + "[" + i + "]");
        return out;
    }

    private Object longOf(byte[] littleEndianTwosComplement) {
        byte[] big = new byte[littleEndianTwosComplement.length];
        for (int i = 0; i < big.length; i++) big[i] = littleEndianTwosComplement[big.length - 1 - i];
        BigInteger v = big.length == 0 ? BigInteger.ZERO : new BigInteger(big);
        if (v.bitLength() > 63) throw bad("an integer of " + v.bitLength() + " bits");
        return v.longValue();
    }

    private String line() {
        long start = pos;
        while (pos < pkl.byteSize() && pkl.get(ValueLayout.JAVA_BYTE, pos) != '\n') {
            if (pos - start > 256) throw bad("a global's name is over 256 bytes");
            pos++;
        }
        if (pos >= pkl.byteSize()) throw bad("data.pkl ends inside a global's name (truncated?)");
        String s = new String(pkl.asSlice(start, pos - start).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
        pos++;
        return s;
    }

    private String text(int n) { return new String(bytes(n), StandardCharsets.UTF_8); }

    private byte[] bytes(int n) { return pkl.asSlice(advance(n), n).toArray(ValueLayout.JAVA_BYTE); }

    private int length(long n) {
        if (n < 0 || n > pkl.byteSize() - pos) throw bad("a length of " + n + " bytes runs past the end of data.pkl (truncated?)");
        return (int) n;
    }

    private int u8() { return pkl.get(ValueLayout.JAVA_BYTE, advance(1)) & 0xFF; }

    private int get(ValueLayout.OfInt layout, int n) { return pkl.get(layout, advance(n)); }

    private short get(ValueLayout.OfShort layout, int n) { return pkl.get(layout, advance(n)); }

    private long get(ValueLayout.OfLong layout, int n) { return pkl.get(layout, advance(n)); }

    private long advance(long n) {
        if (pos + n > pkl.byteSize()) throw bad("data.pkl ends early at byte " + pkl.byteSize() + " (truncated?)");
        long at = pos;
        pos += n;
        return at;
    }

    private IllegalArgumentException bad(String what) {
        return new IllegalArgumentException(file + ": data.pkl: " + what);
    }
}
