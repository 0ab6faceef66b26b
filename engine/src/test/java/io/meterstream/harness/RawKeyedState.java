package io.meterstream.harness;

import java.io.IOException;

import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataInputViewStreamWrapper;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.runtime.state.KeyGroupsStateHandle;
import org.apache.flink.runtime.state.KeyedStateHandle;

/**
 * Reads the raw keyed state an operator wrote into a harness snapshot, key group by key group, as a restore would
 * (the keyed operators keep their memory there, not in managed state, so the harness cannot count it).
 */
public final class RawKeyedState {
    private RawKeyedState() {
    }

    /** What a test reads from one key group's block. */
    public interface Block {
        void read(int keyGroup, DataInputView in) throws IOException;
    }

    /** Every byte of the snapshot's raw keyed state, handle after handle (what a checkpoint stores of it). */
    public static byte[] bytes(OperatorSubtaskState snapshot) throws IOException {
        java.io.ByteArrayOutputStream all = new java.io.ByteArrayOutputStream();
        for (KeyedStateHandle handle : snapshot.getRawKeyedState()) {
            try (FSDataInputStream in = ((KeyGroupsStateHandle) handle).openInputStream()) {
                in.transferTo(all);
            }
        }
        return all.toByteArray();
    }

    /** Calls {@code block} for every key group in the snapshot, positioned at the start of its block. */
    public static void forEachKeyGroup(OperatorSubtaskState snapshot, Block block) throws IOException {
        for (KeyedStateHandle handle : snapshot.getRawKeyedState()) {
            KeyGroupsStateHandle groups = (KeyGroupsStateHandle) handle;
            try (FSDataInputStream in = groups.openInputStream()) {
                for (int keyGroup : groups.getKeyGroupRange()) {
                    in.seek(groups.getOffsetForKeyGroup(keyGroup));
                    block.read(keyGroup, new DataInputViewStreamWrapper(in));
                }
            }
        }
    }
}
