#!/usr/bin/env bats
# Hostile model directories (issue 9, classes 3 and 7): a copy of
# tests/fixtures/tiny-sd with one config key made absurd. spo-generate must
# exit 2 at once with one line naming the config (or weights) file and the
# key, allocate nothing big (a 2 GB address-space limit, outside the
# sanitizer build whose shadow memory needs more), and write nothing.

load helpers

setup() {
    cd "$BATS_TEST_TMPDIR"
    cp -r "$FIX/tiny-sd" m
}

# set KEY of the JSON file m/$1 to the raw JSON value $3 ($2 = key)
set_key() {
    local f=m/$1 key=$2 val=$3
    grep -q "\"$key\":" "$f" || sed -i "0,/{/s//{\n  \"$key\": null,/" "$f"
    # the value may span lines (lists): drop the old one up to the next key
    awk -v k="\"$key\":" -v v="$val" '
        skip && /^  "/ { skip = 0 }
        skip { next }
        index($0, k) == 3 { print "  " k " " v ((/,$/ || /\[$/) ? "," : ""); if (/\[$/) skip = 1; next }
        { print }' "$f" > "$f.new" && mv "$f.new" "$f"
}

# $3.. (default spo-generate on m) exits 2 with one line naming $1 (a path
# under m/) and $2, quickly, within 2 GB of address space, writing nothing
refused() {
    local file=$1 what=$2
    shift 2
    [ $# -gt 0 ] || set -- spo-generate -q -m m --steps 2 "a cat" -o out.png
    local tool=$1
    shift
    if [[ "$BIN" == */san/* ]]; then
        run --separate-stderr timeout 60 "$BIN/$tool" "$@"
    else
        # 2 GB of address space: enough for a tool's start on a many-core
        # machine (one OpenBLAS thread, two malloc arenas), far below what
        # the configs would allocate unchecked
        run --separate-stderr env OPENBLAS_NUM_THREADS=1 MALLOC_ARENA_MAX=2 \
            bash -c 'ulimit -v 2000000; exec timeout 20 "$@"' sh "$BIN/$tool" "$@"
    fi
    echo "status=$status stderr=$stderr"
    [ "$status" -eq 2 ]
    [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
    [[ "$stderr" == "$tool: m/$file:"* ]]
    [[ "$stderr" == *"$what"* ]]
    [ ! -e out.png ]
    [ ! -e out.h5 ]
    [ -z "$(ls -a | grep '\.tmp\.')" ]
}

# spo-score with the preference model of m/spm (a copy of tiny-spm/clip)
refused_spm() {
    cp -r "$FIX/tiny-spm/clip" m/spm
    sed -i "$1" m/spm/config.json
    refused spm/config.json "$2" spo-score -m m --spm m/spm --spm-weights "$FIX/tiny-spm/spm.bin" \
        -e "$FIX/score/embeds.h5" "$FIX/score/pool.h5" -o out.h5
}

@test "the unmodified copy generates (the edits below are the only change)" {
    set_key unet/config.json sample_size 16
    "$BIN/spo-generate" -q -m m --steps 2 "a cat" -o out.png
    [ -s out.png ]
}

@test "unet: block_out_channels near 2^31 (signed overflow, 8.7 GB before the weights)" {
    set_key unet/config.json block_out_channels "[2147483640, 64]"
    refused unet/config.json "'block_out_channels'[0]=2147483640"
}

@test "unet: in range but absurd channels are refused before any allocation" {
    set_key unet/config.json block_out_channels "[32768, 65536]"
    set_key unet/config.json norm_num_groups 32
    refused unet/diffusion_pytorch_model.safetensors "parameters"
}

@test "unet: a config that does not fit its weights names the tensor" {
    set_key unet/config.json block_out_channels "[64, 128]"
    refused unet/diffusion_pytorch_model.safetensors "expected"
}

@test "unet: in_channels, cross_attention_dim, layers_per_block out of range" {
    set_key unet/config.json in_channels 2147483647
    refused unet/config.json "'in_channels'"
    cp "$FIX/tiny-sd/unet/config.json" m/unet/config.json
    set_key unet/config.json cross_attention_dim 1000000000
    refused unet/config.json "'cross_attention_dim'"
    cp "$FIX/tiny-sd/unet/config.json" m/unet/config.json
    set_key unet/config.json layers_per_block 100000
    refused unet/config.json "'layers_per_block'"
}

@test "unet: SDXL's text_time conditioning with absurd sizes, or without its weights" {
    set_key unet/config.json addition_embed_type '"text_time"'
    set_key unet/config.json addition_time_embed_dim 2147483647
    set_key unet/config.json projection_class_embeddings_input_dim 2816
    refused unet/config.json "'addition_time_embed_dim'=2147483647"
    set_key unet/config.json addition_time_embed_dim 256
    set_key unet/config.json projection_class_embeddings_input_dim 1000000000
    refused unet/config.json "'projection_class_embeddings_input_dim'"
    set_key unet/config.json projection_class_embeddings_input_dim 2816
    refused unet/diffusion_pytorch_model.safetensors "add_embedding.linear_1"
}

@test "text encoder: absurd hidden_size, vocab_size, intermediate_size" {
    set_key text_encoder/config.json hidden_size 1000000
    refused text_encoder/config.json "'hidden_size'"
    cp "$FIX/tiny-sd/text_encoder/config.json" m/text_encoder/config.json
    set_key text_encoder/config.json vocab_size 2147483647
    refused text_encoder/config.json "'vocab_size'"
    cp "$FIX/tiny-sd/text_encoder/config.json" m/text_encoder/config.json
    set_key text_encoder/config.json intermediate_size 1073741824
    refused text_encoder/config.json "'intermediate_size'"
    cp "$FIX/tiny-sd/text_encoder/config.json" m/text_encoder/config.json
    set_key text_encoder/config.json intermediate_size 128
    refused text_encoder/model.safetensors "expected"
}

@test "vae: absurd block_out_channels and latent_channels" {
    set_key vae/config.json block_out_channels "[1073741824, 64]"
    refused vae/config.json "'block_out_channels'"
    cp "$FIX/tiny-sd/vae/config.json" m/vae/config.json
    set_key vae/config.json latent_channels 40000
    refused vae/config.json "'latent_channels'"
    cp "$FIX/tiny-sd/vae/config.json" m/vae/config.json
    set_key vae/config.json block_out_channels "[64, 64]"
    refused vae/diffusion_pytorch_model.safetensors "expected"
}

@test "scheduler: beta_start > beta_end (NaN images before)" {
    set_key scheduler/scheduler_config.json beta_start 0.5
    refused scheduler/scheduler_config.json "'beta_start' 0.5 is greater than 'beta_end'"
}

@test "scheduler: betas of 0 or 1, absurd num_train_timesteps, unknown names, wrong types" {
    local s=scheduler/scheduler_config.json
    set_key $s beta_start 0
    refused $s "'beta_start'"
    cp "$FIX/tiny-sd/$s" m/$s
    set_key $s beta_end 1
    refused $s "'beta_end'"
    cp "$FIX/tiny-sd/$s" m/$s
    set_key $s beta_schedule '"linear"'
    set_key $s beta_start 0.9
    set_key $s beta_end 0.95
    refused $s "alphas_cumprod"
    cp "$FIX/tiny-sd/$s" m/$s
    set_key $s num_train_timesteps 1099511627776
    refused $s "'num_train_timesteps'"
    cp "$FIX/tiny-sd/$s" m/$s
    set_key $s num_train_timesteps 100000
    refused $s "'num_train_timesteps'"
    cp "$FIX/tiny-sd/$s" m/$s
    set_key $s beta_schedule '"squaredcos_cap_v2"'
    refused $s "'beta_schedule'"
    cp "$FIX/tiny-sd/$s" m/$s
    set_key $s prediction_type '"v_prediction"'
    refused $s "'prediction_type'"
    cp "$FIX/tiny-sd/$s" m/$s
    set_key $s beta_end '"0.012"'
    refused $s "'beta_end' must be a number"
    cp "$FIX/tiny-sd/$s" m/$s
    set_key $s steps_offset -5
    refused $s "'steps_offset'"
}

@test "preference model: absurd vision sizes are refused before allocation" {
    refused_spm 's/"image_size": 28/"image_size": 4096/; s/"patch_size": 14/"patch_size": 1/' "'image_size'"
    rm -r m/spm
    refused_spm '25s/"hidden_size": 32/"hidden_size": 2147483647/' "'hidden_size'"
    rm -r m/spm
    refused_spm '27s/"intermediate_size": 64/"intermediate_size": 1073741824/' "'intermediate_size'"
    rm -r m/spm
    refused_spm '13s/"hidden_size": 32/"hidden_size": 100000/' "'hidden_size'"
    rm -r m/spm
    refused_spm 's/"projection_dim": 16,/"projection_dim": 2000000000,/' "'projection_dim'"
}

@test "preference model: a config that does not fit its weights names the file and tensor" {
    cp -r "$FIX/tiny-spm/clip" m/spm
    sed -i '27s/"intermediate_size": 64/"intermediate_size": 128/' m/spm/config.json
    run --separate-stderr "$BIN/spo-score" -m m --spm m/spm --spm-weights "$FIX/tiny-spm/spm.bin" \
        -e "$FIX/score/embeds.h5" "$FIX/score/pool.h5" -o out.h5
    echo "status=$status stderr=$stderr"
    [ "$status" -eq 2 ]
    [[ "$stderr" == "spo-score: $FIX/tiny-spm/spm.bin: tensor '"*"' is "*", expected "* ]]
    [ ! -e out.h5 ]
}
